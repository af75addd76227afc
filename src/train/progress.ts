import cliProgress from 'cli-progress';

/** How progress is shown: a bar on a terminal, plain lines, JSON lines, or nothing. */
export type ProgressMode = 'auto' | 'bar' | 'plain' | 'json' | 'none';

export interface StepProgress {
  /** Counted from 1, like `step`. */
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
  ce: number;
  contrastive: number;
  accuracy: number;
  imagesPerSecond: number;
  learningRate: number;
}

export interface EpochSummary {
  /** Counted from 1. */
  epoch: number;
  epochs: number;
  seconds: number;
  metrics: Record<string, number>;
  best: boolean;
}

/** The files the data index left out (corrupt, truncated, unreadable, ...): how many, and the first few. */
export interface ExcludedReport {
  count: number;
  files: { path: string; reason: string }[];
}

/** Reports training progress; every method is cheap and never throws. */
export interface ProgressReporter {
  step(p: StepProgress): void;
  epoch(s: EpochSummary): void;
  message(text: string): void;
  /** The files left out of training, at its start. Defaults to a `message` with the same content. */
  excluded?(r: ExcludedReport): void;
  close(): void;
}

/** Tells the reporter which files training leaves out (nothing when none): the count and the first `first`. */
export function reportExcluded(
  progress: ProgressReporter,
  excluded: readonly { path: string; reason: string }[],
  first = 5,
): void {
  if (excluded.length === 0) return;
  const report: ExcludedReport = {
    count: excluded.length,
    files: excluded
      .slice(0, first)
      .map((f) => ({ path: f.path, reason: f.reason.split('\n')[0]?.slice(0, 300) ?? '' })),
  };
  if (progress.excluded) progress.excluded(report);
  else progress.message(excludedText(report));
}

function excludedText(r: ExcludedReport): string {
  const lines = [
    `left out ${r.count} file${r.count === 1 ? '' : 's'} that cannot be used (all of them: split.json in the run ` +
      'folder, or `trt-flowers data stats`):',
    ...r.files.map((f) => `  ${f.path}: ${f.reason}`),
  ];
  if (r.count > r.files.length) lines.push(`  ... and ${r.count - r.files.length} more`);
  return lines.join('\n');
}

/** Resolves 'auto': a bar when stderr is a terminal, plain lines otherwise. */
export function resolveProgressMode(mode: ProgressMode, stream: NodeJS.WriteStream = process.stderr): ProgressMode {
  if (mode !== 'auto') return mode;
  return stream.isTTY ? 'bar' : 'plain';
}

const fmt = (v: number, digits = 4): string => (Number.isFinite(v) ? v.toFixed(digits) : String(v));

function epochLine(s: EpochSummary): string {
  const m = s.metrics;
  const parts = Object.entries(m).map(([k, v]) => `${k} ${fmt(v)}`);
  return `epoch ${s.epoch}/${s.epochs} done in ${s.seconds.toFixed(1)} s: ${parts.join(', ')}${s.best ? ' (best)' : ''}`;
}

/** Creates the reporter for a mode. Plain lines are throttled to one per `plainEverySeconds`. */
export function createProgress(
  mode: ProgressMode,
  options: { stream?: NodeJS.WriteStream; plainEverySeconds?: number } = {},
): ProgressReporter {
  const stream = options.stream ?? process.stderr;
  const resolved = resolveProgressMode(mode, stream);
  const write = (s: string): void => {
    stream.write(`${s}\n`);
  };
  if (resolved === 'none') return { step() {}, epoch() {}, message() {}, close() {} };
  if (resolved === 'json') {
    return {
      step: (p) => write(JSON.stringify({ type: 'step', ...p })),
      epoch: (s) => write(JSON.stringify({ type: 'epoch', ...s })),
      message: (text) => write(JSON.stringify({ type: 'message', text })),
      excluded: (r) => write(JSON.stringify({ type: 'excluded', ...r })),
      close() {},
    };
  }
  if (resolved === 'plain') {
    let last = 0;
    const every = (options.plainEverySeconds ?? 10) * 1000;
    return {
      step(p) {
        const now = Date.now();
        if (now - last < every && p.step !== p.steps) return;
        last = now;
        write(
          `epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.steps}: loss ${fmt(p.loss)} (ce ${fmt(p.ce)}, ` +
            `contrastive ${fmt(p.contrastive)}), acc ${fmt(p.accuracy, 3)}, ${p.imagesPerSecond.toFixed(1)} img/s, ` +
            `lr ${p.learningRate.toExponential(2)}`,
        );
      },
      epoch: (s) => write(epochLine(s)),
      message: write,
      close() {},
    };
  }
  let bar: cliProgress.SingleBar | undefined;
  let barEpoch = -1;
  return {
    step(p) {
      if (!bar || barEpoch !== p.epoch) {
        bar?.stop();
        bar = new cliProgress.SingleBar(
          {
            stream,
            format: `epoch ${p.epoch}/${p.epochs} {bar} {value}/{total} | loss {loss} ce {ce} con {con} | acc {acc} | {ips} img/s | ETA {eta_formatted}`,
            hideCursor: true,
            etaBuffer: 20,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(p.steps, 0);
        barEpoch = p.epoch;
      }
      bar.update(p.step, {
        loss: fmt(p.loss),
        ce: fmt(p.ce),
        con: fmt(p.contrastive),
        acc: fmt(p.accuracy, 3),
        ips: p.imagesPerSecond.toFixed(1),
      });
    },
    epoch(s) {
      bar?.stop();
      bar = undefined;
      write(epochLine(s));
    },
    message(text) {
      if (bar) stream.write('\n');
      write(text);
    },
    close() {
      bar?.stop();
      bar = undefined;
    },
  };
}
