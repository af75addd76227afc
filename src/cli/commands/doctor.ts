import type { Command } from 'commander';

import { doctor, formatDoctor } from '../../doctor.js';

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('show what is installed: libtorch, CUDA, TensorRT, ONNX Runtime, sharp/libvips, Python, threads')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const report = await doctor();
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatDoctor(report)}\n`);
      if (!report.addon.loaded) process.exitCode = 1;
    });
}
