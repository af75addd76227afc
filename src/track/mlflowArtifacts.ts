/**
 * Where a run's artifacts go, read from its `artifact_uri`: the tracking server's artifacts proxy
 * (`mlflow-artifacts:`, what `mlflow server` hands out by default), a local folder (`file:` URI or a plain path, as a
 * server on this machine without the proxy gives), or a store this client cannot write (s3:, gs:, ...).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { MlflowRunInfo } from './mlflowBatch.js';

export type ArtifactStore =
  /** PUT `<tracking>/api/2.0/mlflow-artifacts/artifacts/<root>/<artifact path>`. */
  | { kind: 'proxy'; root: string }
  /** Files written straight into `dir` (absolute). */
  | { kind: 'local'; dir: string }
  /** Not writable from here; `reason` says why, for the warning. */
  | { kind: 'unsupported'; reason: string };

/** The artifact store of a run. A run without `artifact_uri` uses the proxy's default layout. */
export function artifactStore(run: MlflowRunInfo, cwd = process.cwd()): ArtifactStore {
  const uri = run.artifact_uri;
  const fallback: ArtifactStore = { kind: 'proxy', root: `${run.experiment_id}/${run.run_id}/artifacts` };
  if (!uri) return fallback;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase();
  if (scheme === 'mlflow-artifacts') {
    // mlflow-artifacts:/<path> or mlflow-artifacts://<host>/<path>: the path under the proxy.
    const root = uri
      .slice('mlflow-artifacts:'.length)
      .replace(/^\/\/[^/]*/, '')
      .replace(/^\/+|\/+$/g, '');
    return root ? { kind: 'proxy', root } : fallback;
  }
  if (scheme === 'file') {
    try {
      return { kind: 'local', dir: fileURLToPath(uri) };
    } catch (err) {
      return { kind: 'unsupported', reason: `${uri} is not a local file URI (${(err as Error).message})` };
    }
  }
  // No scheme: a path on this machine (relative ones resolve against the working directory, as MLflow's do).
  if (scheme === undefined) return { kind: 'local', dir: path.resolve(cwd, uri) };
  return {
    kind: 'unsupported',
    reason: `the run's artifact store ${uri} (${scheme}:) is not supported (only the server's artifacts proxy, file: and local paths)`,
  };
}

/** The local file an artifact path names under `dir`. */
export const localArtifactFile = (dir: string, artifactPath: string): string =>
  path.join(dir, ...artifactPath.split('/'));
