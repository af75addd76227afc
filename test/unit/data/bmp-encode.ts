/** Test helper: writes an uncompressed bottom-up BMP (24-bit, or 32-bit BI_BITFIELDS with alpha) from RGB(A) bytes. */
export function encodeBmp(rgb: Uint8Array, width: number, height: number, bpp: 24 | 32 = 24, topDown = false): Buffer {
  const channels = bpp === 32 ? 4 : 3;
  const stride = Math.ceil((width * bpp) / 32) * 4;
  const headerSize = bpp === 32 ? 108 : 40;
  const offset = 14 + headerSize;
  const buf = Buffer.alloc(offset + stride * height);
  buf.write('BM', 0, 'latin1');
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(offset, 10);
  buf.writeUInt32LE(headerSize, 14);
  buf.writeInt32LE(width, 18);
  buf.writeInt32LE(topDown ? -height : height, 22);
  buf.writeUInt16LE(1, 26);
  buf.writeUInt16LE(bpp, 28);
  buf.writeUInt32LE(bpp === 32 ? 3 : 0, 30);
  buf.writeUInt32LE(stride * height, 34);
  if (bpp === 32) {
    buf.writeUInt32LE(0x00ff0000, 54);
    buf.writeUInt32LE(0x0000ff00, 58);
    buf.writeUInt32LE(0x000000ff, 62);
    buf.writeUInt32LE(0xff000000, 66);
  }
  for (let y = 0; y < height; y++) {
    const row = offset + (topDown ? y : height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const s = (y * width + x) * channels;
      const d = row + x * (bpp / 8);
      buf[d] = rgb[s + 2] as number;
      buf[d + 1] = rgb[s + 1] as number;
      buf[d + 2] = rgb[s] as number;
      if (bpp === 32) buf[d + 3] = rgb[s + 3] as number;
    }
  }
  return buf;
}
