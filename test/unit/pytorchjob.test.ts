// The Kubernetes example is a well-formed PyTorchJob whose pods run the same `trt-flowers train` command.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';
import YAML from 'yaml';

import { loadTrainConfig } from '../../src/config/index.js';
import { repoRoot } from '../helpers.js';

interface Container {
  name: string;
  image: string;
  command: string[];
  env?: { name: string; value: string }[];
  volumeMounts?: { name: string; mountPath: string }[];
}
interface Replica {
  replicas: number;
  restartPolicy: string;
  template: { spec: { containers: Container[]; volumes: { name: string }[] } };
}

const file = join(repoRoot, 'examples', 'kubernetes', 'pytorchjob.yaml');

describe('examples/kubernetes/pytorchjob.yaml', () => {
  const docs = YAML.parseAllDocuments(readFileSync(file, 'utf8'));
  const job = docs[0]?.toJS() as {
    apiVersion: string;
    kind: string;
    metadata: { name: string };
    spec: { pytorchReplicaSpecs: Record<string, Replica> };
  };

  it('is one YAML document without errors', () => {
    expect(docs).toHaveLength(1);
    expect(docs[0]!.errors).toEqual([]);
  });

  it('is a kubeflow.org/v1 PyTorchJob with one Master and workers', () => {
    expect(job.apiVersion).toBe('kubeflow.org/v1');
    expect(job.kind).toBe('PyTorchJob');
    expect(job.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    const specs = job.spec.pytorchReplicaSpecs;
    expect(Object.keys(specs).sort()).toEqual(['Master', 'Worker']);
    expect(specs.Master!.replicas).toBe(1);
    expect(specs.Worker!.replicas).toBeGreaterThanOrEqual(1);
  });

  it("runs the same trt-flowers train command in the operator's `pytorch` container, with valid overrides", () => {
    const specs = job.spec.pytorchReplicaSpecs;
    const containers = Object.values(specs).map((r) => r.template.spec.containers[0]!);
    for (const [i, c] of containers.entries()) {
      const replica = Object.values(specs)[i]!;
      expect(c.name).toBe('pytorch');
      expect(c.image).toMatch(/\S+:\S+/);
      expect(c.command.slice(0, 2)).toEqual(['trt-flowers', 'train']);
      expect(c.env).toContainEqual({ name: 'GLOO_SOCKET_IFNAME', value: 'eth0' });
      const volumes = replica.template.spec.volumes.map((v) => v.name).sort();
      expect((c.volumeMounts ?? []).map((m) => m.name).sort()).toEqual(volumes);
      expect(['OnFailure', 'Never', 'ExitCode']).toContain(replica.restartPolicy);
    }
    expect(containers[1]!.command).toEqual(containers[0]!.command);
    expect(containers[1]!.image).toBe(containers[0]!.image);
    // The key=value overrides are keys the config knows.
    const overrides = containers[0]!.command.filter((a) => /^[a-z_]+\.[a-z_]+=/.test(a));
    expect(overrides.length).toBeGreaterThan(0);
    expect(() => loadTrainConfig({ overrides })).not.toThrow();
  });
});
