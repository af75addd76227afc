import { createRequire } from 'node:module';

import { Command, CommanderError } from 'commander';

import { TrtFlowersError } from '../errors.js';
import { registerBenchCommand } from './commands/bench.js';
import { registerBuildEngineCommand } from './commands/build-engine.js';
import { registerDataCommand } from './commands/data.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerEvaluateCommand } from './commands/evaluate.js';
import { registerExportBackboneCommand } from './commands/export-backbone.js';
import { registerExportOnnxCommand } from './commands/export-onnx.js';
import { registerExportTritonCommand } from './commands/export-triton.js';
import { registerPredictCommands } from './commands/predict.js';
import { registerRobustnessCommand } from './commands/robustness.js';
import { registerServeCommand } from './commands/serve.js';
import { registerTrainCommand } from './commands/train.js';

const require = createRequire(import.meta.url);
const { version } = require('../../package.json') as { version: string };

/** Builds the `trt-flowers` program with every command registered. */
export function createProgram(): Command {
  const program = new Command('trt-flowers')
    .description('train, export, build and serve a flower classifier from Node.js')
    .version(version)
    .showHelpAfterError('(run with --help for usage)');
  registerDoctorCommand(program);
  registerDataCommand(program);
  registerExportBackboneCommand(program);
  registerTrainCommand(program);
  registerEvaluateCommand(program);
  registerExportOnnxCommand(program);
  registerExportTritonCommand(program);
  registerPredictCommands(program);
  registerBuildEngineCommand(program);
  registerServeCommand(program);
  registerBenchCommand(program);
  registerRobustnessCommand(program);
  return program;
}

/**
 * Runs the CLI. Expected failures (typed errors, invalid arguments) print one `error:` message and set exit code 1;
 * anything else prints its stack.
 */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  const program = createProgram().exitOverride();
  try {
    await program.parseAsync(argv as string[]);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof TrtFlowersError || err instanceof TypeError || err instanceof RangeError) {
      process.stderr.write(`error: ${(err as Error).message}\n`);
    } else {
      process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
    }
    process.exitCode = 1;
  }
}
