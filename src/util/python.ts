import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { packageRoot } from './paths.js';
import { CancelledError, ExportError } from '../errors.js';

/** Where the project's Python steps live. */
export const scriptsDir = join(packageRoot, 'scripts');

/**
 * The Python interpreter for the export steps: TRT_FLOWERS_PYTHON, else Debian's /usr/bin/python3 (the one that has
 * python3-torch; a pyenv `python3` earlier on PATH usually does not), else `python3`.
 */
export function defaultPython(): string {
  if (process.env.TRT_FLOWERS_PYTHON) return process.env.TRT_FLOWERS_PYTHON;
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

export interface PythonRunOptions {
  /** Interpreter. Defaults to defaultPython(). */
  python?: string;
  /** Cancels the step (the child gets SIGTERM). */
  signal?: AbortSignal;
  /** Called with each stderr line as it arrives (progress). */
  onStderr?: (line: string) => void;
}

/**
 * Runs scripts/<script> and returns the JSON object printed on its last stdout line. Rejects with ExportError
 * carrying the script's own error message, or CancelledError.
 */
export async function runPythonStep<T = Record<string, unknown>>(
  script: string,
  args: readonly string[],
  options: PythonRunOptions = {},
): Promise<T> {
  const python = options.python ?? defaultPython();
  const scriptPath = join(scriptsDir, script);
  if (options.signal?.aborted) throw new CancelledError();
  return new Promise<T>((resolve, reject) => {
    const child = spawn(python, [scriptPath, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.signal ? { signal: options.signal } : {}),
    });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      pending += d;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) options.onStderr?.(line);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.name === 'AbortError') return reject(new CancelledError());
      reject(
        new ExportError(
          err.code === 'ENOENT'
            ? `Python interpreter '${python}' not found: install python3-torch (npm run setup) or set TRT_FLOWERS_PYTHON`
            : `cannot run ${script}: ${err.message}`,
          { cause: err },
        ),
      );
    });
    child.on('close', (code, signal) => {
      if (options.signal?.aborted) return reject(new CancelledError());
      if (code !== 0) {
        const tail = stderr.trim().split('\n').slice(-8).join('\n');
        const hint = /No module named '?(torch|torchvision|onnx)/.test(stderr)
          ? `\n(${python} lacks PyTorch: run \`npm run setup\` or set TRT_FLOWERS_PYTHON to a Python with torch)`
          : '';
        return reject(
          new ExportError(
            `${script} failed (${signal ?? `exit code ${code}`}): ${tail.replace(/^error: /, '')}${hint}`,
          ),
        );
      }
      const last = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new ExportError(`${script} printed no result line: ${stdout.slice(-500)}`));
      }
    });
  });
}
