import { resolve } from 'node:path';

import { runPythonStep, type PythonRunOptions } from './python.js';

export type BackboneArch = 'tiny' | 'mobilenet_v2';
export const BACKBONE_ARCHS: readonly BackboneArch[] = ['tiny', 'mobilenet_v2'];

/** Options of exportBackbone. */
export interface ExportBackboneOptions extends PythonRunOptions {
  /** Architecture. */
  arch: BackboneArch;
  /** Output TorchScript file. */
  out: string;
  /** torchvision-keyed .safetensors with pretrained weights (mobilenet_v2). Defaults to none (random init). */
  weights?: string;
  /** Classes of the new head. Defaults to 5. */
  numClasses?: number;
  /** Size of a projection head for the embedding; 0 keeps the pooled features. Defaults to 0. */
  embeddingSize?: number;
  /** Seed of the random initialisation. Defaults to 0. */
  seed?: number;
}

export interface ExportBackboneResult {
  out: string;
  arch: BackboneArch;
  num_classes: number;
  embedding_size: number;
  parameters: number;
  pretrained: boolean;
  torch: string;
}

/** Writes a scripted TorchScript classifier returning (logits, embedding), via scripts/export_backbone.py. */
export async function exportBackbone(options: ExportBackboneOptions): Promise<ExportBackboneResult> {
  if (!BACKBONE_ARCHS.includes(options.arch)) {
    throw new RangeError(`Expected one of ${BACKBONE_ARCHS.join(', ')} for \`arch\` but received '${options.arch}'`);
  }
  const numClasses = options.numClasses ?? 5;
  if (!Number.isInteger(numClasses) || numClasses < 2 || numClasses > 100_000) {
    throw new RangeError(`Expected an integer between 2 and 100000 for \`numClasses\` but received ${numClasses}`);
  }
  const args = ['--arch', options.arch, '--out', resolve(options.out), '--num-classes', String(numClasses)];
  if (options.weights) args.push('--weights', resolve(options.weights));
  if (options.embeddingSize !== undefined) args.push('--embedding-size', String(options.embeddingSize));
  if (options.seed !== undefined) args.push('--seed', String(options.seed));
  return runPythonStep<ExportBackboneResult>('export_backbone.py', args, options);
}
