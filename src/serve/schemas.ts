import sharp from 'sharp';

/**
 * JSON schemas of the server's requests and responses. They feed the OpenAPI document (GET /openapi.json, GET /docs)
 * and fastify's response serialisation.
 */

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  description: 'Every error: a stable code and a message that says what was wrong',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', examples: ['ERR_INVALID_IMAGE'] },
        message: { type: 'string' },
      },
    },
  },
} as const;

export const predictionSchema = {
  $id: 'Prediction',
  type: 'object',
  description: 'The output of `trt-flowers predict`: probabilities high to low, rounded to 4 decimals',
  required: ['image_path', 'predicted_class', 'confidence', 'all_probabilities'],
  properties: {
    image_path: { type: 'string', description: 'The uploaded file name' },
    predicted_class: { type: 'string', examples: ['roses'] },
    confidence: { type: 'number', examples: [0.9512] },
    all_probabilities: {
      type: 'object',
      additionalProperties: { type: 'number' },
      examples: [{ roses: 0.9512, tulips: 0.0301, daisy: 0.0102, sunflowers: 0.0055, dandelion: 0.003 }],
    },
  },
} as const;

export const batchSchema = {
  $id: 'BatchPrediction',
  type: 'object',
  required: ['predictions'],
  properties: {
    predictions: { type: 'array', items: { $ref: 'Prediction#' } },
  },
} as const;

export const infoSchema = {
  $id: 'Info',
  type: 'object',
  properties: {
    name: { type: 'string' },
    version: { type: 'string' },
    model: { type: 'string', description: 'Model file name' },
    model_path: { type: 'string' },
    backend: { type: 'string', enum: ['libtorch', 'onnxruntime', 'tensorrt'] },
    precision: { type: 'string', enum: ['fp32', 'fp16', 'int8'] },
    device: { type: 'string' },
    classes: { type: 'array', items: { type: 'string' } },
    input_shape: { type: 'array', items: { type: 'integer' } },
    preprocessing: {
      type: 'object',
      properties: {
        size: { type: 'integer' },
        mean: { type: 'array', items: { type: 'number' } },
        std: { type: 'array', items: { type: 'number' } },
        resize: { type: 'string' },
      },
    },
    metadata_source: { type: 'string' },
    versions: { type: 'object', additionalProperties: { type: 'string' } },
    ready: { type: 'boolean' },
    limits: {
      type: 'object',
      properties: {
        max_body_bytes: { type: 'integer' },
        max_file_bytes: { type: 'integer' },
        max_images_per_request: { type: 'integer' },
        max_pixels: { type: 'integer' },
        max_batch: { type: 'integer' },
        max_wait_ms: { type: 'integer' },
      },
    },
    docs: { type: 'string' },
    endpoints: { type: 'array', items: { type: 'string' } },
  },
} as const;

export const healthSchema = {
  $id: 'Health',
  type: 'object',
  required: ['status', 'live', 'ready'],
  properties: {
    status: { type: 'string', enum: ['ok', 'loading', 'warming_up', 'stopping', 'failed'] },
    live: { type: 'boolean', description: 'The process answers' },
    ready: { type: 'boolean', description: 'The model is loaded and one warm-up inference is done' },
    model_loaded: { type: 'boolean' },
    warmed_up: { type: 'boolean' },
    uptime_s: { type: 'number' },
    queue_depth: { type: 'integer' },
    error: { type: 'string' },
  },
} as const;

/** multipart/form-data bodies as OpenAPI describes file uploads (documentation only: the parser enforces them). */
export const uploadBody = (field: string, many: boolean, maxImages: number) => ({
  content: {
    'multipart/form-data': {
      schema: {
        type: 'object',
        required: [field],
        properties: {
          [field]: many
            ? {
                type: 'array',
                maxItems: maxImages,
                items: { type: 'string', format: 'binary' },
                description: `1 to ${maxImages} images (also accepted as repeated \`file\` fields)`,
              }
            : { type: 'string', format: 'binary', description: 'a JPEG, PNG, WebP, TIFF or BMP image' },
        },
      },
    },
  },
});

/**
 * A small real JPEG (a 32x24 photo-coloured gradient), base64-encoded, for the request examples of the OpenAPI
 * document: Swagger UI's "Try it out" sends them as they are, so they must be images the server classifies.
 */
export async function exampleImageBase64(): Promise<string> {
  const width = 32;
  const height = 24;
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      pixels.set([200 - 4 * y, 60 + 5 * x, 90 + 3 * y], (y * width + x) * 3);
    }
  }
  const jpeg = await sharp(pixels, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 60 })
    .toBuffer();
  return jpeg.toString('base64');
}

export const invocationsBody = (maxImages: number, image: string) => ({
  content: {
    'application/json': {
      schema: {
        type: 'object',
        description:
          "MLflow's scoring protocol for images: base64-encoded image files (a `data:` URL works too), as `instances` " +
          'or `inputs` (one string, a list of strings, of {"b64": ...} objects, or {"image": [...]}), or as the ' +
          `first column of \`dataframe_split\` / \`dataframe_records\`. At most ${maxImages} images.`,
        properties: {
          instances: { type: 'array', items: {} },
          inputs: {},
          dataframe_split: {
            type: 'object',
            properties: {
              columns: { type: 'array', items: { type: 'string' } },
              data: { type: 'array', items: { type: 'array', items: {} } },
            },
          },
          dataframe_records: { type: 'array', items: { type: 'object' } },
        },
        'x-examples': {
          instances: { summary: 'instances: a list of {"b64": ...}', value: { instances: [{ b64: image }] } },
          inputs: { summary: 'inputs: one base64 image', value: { inputs: image } },
          dataframe_split: {
            summary: 'dataframe_split: an `image` column',
            value: { dataframe_split: { columns: ['image'], data: [[image]] } },
          },
          dataframe_records: { summary: 'dataframe_records', value: { dataframe_records: [{ image }] } },
        },
      },
    },
    'text/csv': {
      schema: {
        type: 'string',
        description:
          'CSV as pandas writes it (MLflow reads CSV input with pandas): one base64 image per row, in the column ' +
          `named \`image\` (else the first one); the header row is optional. At most ${maxImages} rows.`,
        examples: [`image\n${image}\n`],
      },
    },
  },
});

export const invocationsResponse = {
  type: 'object',
  required: ['predictions'],
  properties: {
    predictions: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          predicted_class: { type: 'string' },
          confidence: { type: 'number' },
          all_probabilities: { type: 'object', additionalProperties: { type: 'number' } },
        },
      },
    },
  },
} as const;

/** Error responses a route documents, by status. */
export function errorResponses(...statuses: number[]): Record<number, { $ref: string; description: string }> {
  const why: Record<number, string> = {
    400: 'Bad input: not an image, a corrupt image, no file, too many files, malformed body',
    408: 'The client took too long to send the request',
    413: 'Body, file or image (pixels) too large',
    415: 'Wrong content type',
    500: 'The model failed on valid input',
    503: 'Not ready yet, shutting down, or overloaded (Retry-After)',
  };
  return Object.fromEntries(statuses.map((s) => [s, { $ref: 'Error#', description: why[s] ?? 'Error' }]));
}
