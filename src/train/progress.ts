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

/** Reports training progress; every method is cheap and never throws. */
export interface ProgressReporter {
  step(p: StepProgress): void;
  epoch(s: EpochSummary): void;
  message(text: string): void;
  close(): void;
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
