import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';

import { ExportError } from '../errors.js';
import { runPythonStep, type PythonRunOptions } from '../util/python.js';
import { describe } from '../util/describe.js';

export type BackboneArch = 'tiny' | 'mobilenet_v2' | 'rexnet_150';
export const BACKBONE_ARCHS: readonly BackboneArch[] = ['tiny', 'mobilenet_v2', 'rexnet_150'];

/** Options of exportBackbone. */
export interface ExportBackboneOptions extends PythonRunOptions {
  /** Architecture: a tiny test CNN, MobileNetV2-1.0 (ReLU, as the ImageNet weights were trained) or ReXNet-1.5x. */
  arch: BackboneArch;
  /** Output TorchScript file. */
  out: string;
  /**
   * Pretrained .safetensors: torchvision keys for mobilenet_v2, timm keys for rexnet_150 (with `timm`, any file
   * timm reads). Defaults to none (random init).
   */
  weights?: string;
  /** rexnet_150 from the timm package with its pretrained weights (timm must be importable). Defaults to false. */
  timm?: boolean;
  /** Classes of the new head. Defaults to 5. */
  numClasses?: number;
  /** Size of a projection head for the embedding; 0 keeps the pooled features. Defaults to 0. */
  embeddingSize?: number;
  /** Dropout before the classifier, in [0, 1). Defaults to 0.2. */
  dropout?: number;
  /**
   * Every BatchNorm normalises with its running statistics and never updates them, in train mode too (weight and
   * bias stay trainable): keeps the MobileNetV2 ImageNet BatchNorms, identities carrying the conv bias, intact.
   * Defaults to false.
   */
  freezeBn?: boolean;
  /**
   * The ImageNet check before the head is replaced: a folder of images to classify with the pretrained 1000-class
   * head (fails on a wrong top-1), or false to skip it. Defaults to the `samples/` folder beside the weights file
   * when it has one and an imagenet_words.txt (the shared MobileNetV2 layout), else no check.
   */
  verifyImagenet?: string | false;
  /** Seed of the random initialisation. Defaults to 0. */
  seed?: number;
}

/** One image of the ImageNet check. */
export interface ImagenetCheckRow {
  image: string;
  /** First name of the top-1 class in imagenet_words.txt. */
  top1: string;
  prob: number;
  class_index: number;
  /** Accepted top-1 names, or null when the image has no expectation (then `ok` is null). */
  expected: string[] | null;
  ok: boolean | null;
}

export interface ExportBackboneResult {
  out: string;
  arch: BackboneArch;
  num_classes: number;
  embedding_size: number;
  parameters: number;
  pretrained: boolean;
  torch: string;
  /** Parameters of the same backbone with a 1000-class head on the pooled features (rexnet_150: about 9.73M). */
  parameters_imagenet_head: number;
  /** Which definition was used (e.g. "scripts/rexnet.py rexnet_150"). */
  source: string;
  freeze_bn: boolean;
  frozen_batchnorms: number;
  dropout: number;
  /** Present when the ImageNet check ran (it failed the export otherwise). */
  imagenet_check?: ImagenetCheckRow[];
  /** Largest difference between the written model's embedding and the checked pretrained features. */
  imagenet_embedding_max_diff?: number;
}

/**
 * Writes a scripted TorchScript classifier returning (logits, embedding), via scripts/export_backbone.py. Throws
 * RangeError / TypeError naming a bad option; rejects with ExportError (missing or wrong weights, failed ImageNet
 * check, timm missing) or CancelledError.
 */
export async function exportBackbone(options: ExportBackboneOptions): Promise<ExportBackboneResult> {
  if (!BACKBONE_ARCHS.includes(options.arch)) {
    throw new RangeError(`Expected one of ${BACKBONE_ARCHS.join(', ')} for \`arch\` but received '${options.arch}'`);
  }
  if (typeof options.out !== 'string' || options.out.length === 0) {
    throw new TypeError(`Expected a non-empty string for \`out\` but received ${describe(options.out)}`);
  }
  const numClasses = options.numClasses ?? 5;
  if (!Number.isInteger(numClasses) || numClasses < 2 || numClasses > 100_000) {
    throw new RangeError(`Expected an integer between 2 and 100000 for \`numClasses\` but received ${numClasses}`);
  }
  const embeddingSize = options.embeddingSize;
  if (
    embeddingSize !== undefined &&
    (!Number.isInteger(embeddingSize) || embeddingSize < 0 || embeddingSize > 65_536)
  ) {
    throw new RangeError(`Expected an integer between 0 and 65536 for \`embeddingSize\` but received ${embeddingSize}`);
  }
  const dropout = options.dropout;
  if (
    dropout !== undefined &&
    (typeof dropout !== 'number' || !Number.isFinite(dropout) || dropout < 0 || dropout >= 1)
  ) {
    throw new RangeError(`Expected a number in [0, 1) for \`dropout\` but received ${describe(dropout)}`);
  }
  if (options.timm && options.arch !== 'rexnet_150') {
    throw new RangeError(`\`timm\` is for arch 'rexnet_150' but received arch '${options.arch}'`);
  }
  if (options.weights !== undefined) {
    if (typeof options.weights !== 'string' || options.weights.length === 0) {
      throw new TypeError(`Expected a file path for \`weights\` but received ${describe(options.weights)}`);
    }
    if (options.arch === 'tiny') throw new RangeError("`weights` is not supported for arch 'tiny'");
    if (!existsSync(options.weights) || !statSync(options.weights).isFile()) {
      throw new ExportError(`weights file not found: ${resolve(options.weights)}`);
    }
  }
  const verify = options.verifyImagenet;
  if (verify !== undefined && verify !== false) {
    if (typeof verify !== 'string' || verify.length === 0) {
      throw new TypeError(`Expected a folder or false for \`verifyImagenet\` but received ${describe(verify)}`);
    }
    if (!existsSync(verify) || !statSync(verify).isDirectory()) {
      throw new ExportError(`verifyImagenet: not a folder: ${resolve(verify)}`);
    }
  }

  const args = ['--arch', options.arch, '--out', resolve(options.out), '--num-classes', String(numClasses)];
  if (options.weights) args.push('--weights', resolve(options.weights));
  if (options.timm) args.push('--timm');
  if (embeddingSize !== undefined) args.push('--embedding-size', String(embeddingSize));
  if (dropout !== undefined) args.push('--dropout', String(dropout));
  if (options.freezeBn) args.push('--freeze-bn');
  if (typeof verify === 'string') args.push('--verify-imagenet', resolve(verify));
  else if (verify === false) args.push('--skip-imagenet-check');
  if (options.seed !== undefined) args.push('--seed', String(options.seed));
  return runPythonStep<ExportBackboneResult>('export_backbone.py', args, options);
}
