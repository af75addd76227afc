/**
 * OpenAPI descriptions of the Open Inference Protocol's REST endpoints (GET /openapi.json, /docs). Schemas are inline:
 * the V2 routes live in a scope of their own.
 */

const json = (schema: Record<string, unknown>, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

const errorBody = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'string', description: 'What was wrong' } },
};

const errors = (...statuses: number[]) => {
  const why: Record<number, string> = {
    400: 'Bad input (the message says what), or not ready',
    404: 'Unknown model or version',
    413: 'Body or image too large',
    500: 'The model failed on valid input',
    503: 'Model not ready yet, shutting down, or overloaded (Retry-After)',
  };
  return Object.fromEntries(statuses.map((s) => [s, json(errorBody, why[s] ?? 'Error')]));
};

const tensorMeta = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    datatype: { type: 'string', enum: ['FP32', 'BYTES'] },
    shape: { type: 'array', items: { type: 'integer' } },
  },
};

const params = (version: boolean) => ({
  type: 'object',
  required: version ? ['name', 'version'] : ['name'],
  properties: {
    name: { type: 'string', description: 'Model name' },
    ...(version ? { version: { type: 'string', description: 'Model version' } } : {}),
  },
});

const tags = ['kserve'];

export function v2Schemas(maxImages: number, exampleImage: string) {
  return {
    server: {
      summary: 'Open Inference Protocol: server metadata',
      tags,
      response: {
        200: json(
          {
            type: 'object',
            properties: {
              name: { type: 'string' },
              version: { type: 'string' },
              extensions: { type: 'array', items: { type: 'string' } },
            },
          },
          'Server name, version and protocol extensions',
        ),
      },
    },
    health: (what: 'live' | 'ready', when: string) => ({
      summary: `Open Inference Protocol: server ${what === 'live' ? 'liveness' : 'readiness'} (200 when ${when}, else 400)`,
      tags,
      response: {
        200: json({ type: 'object', properties: { [what]: { type: 'boolean' } } }, when),
        400: json({ type: 'object', properties: { [what]: { type: 'boolean' } } }, `not ${what}`),
      },
    }),
    metadata: (version: boolean) => ({
      summary: 'Open Inference Protocol: model metadata (name, versions, platform, inputs, outputs)',
      tags,
      params: params(version),
      response: {
        200: json(
          {
            type: 'object',
            properties: {
              name: { type: 'string' },
              versions: { type: 'array', items: { type: 'string' } },
              platform: { type: 'string' },
              inputs: { type: 'array', items: tensorMeta },
              outputs: { type: 'array', items: tensorMeta },
            },
          },
          'Model metadata',
        ),
        ...errors(404, 503),
      },
    }),
    modelReady: (version: boolean) => ({
      summary: 'Open Inference Protocol: model readiness (200 ready, 400 not ready)',
      tags,
      params: params(version),
      response: {
        200: json({ type: 'object', properties: { name: { type: 'string' }, ready: { type: 'boolean' } } }, 'Ready'),
        400: json(
          { type: 'object', properties: { name: { type: 'string' }, ready: { type: 'boolean' } } },
          'Not ready',
        ),
        ...errors(404),
      },
    }),
    config: (version: boolean) => ({
      summary: "Model configuration extension: the model's Triton model_config as JSON",
      tags,
      params: params(version),
      response: {
        200: json({ type: 'object', properties: { config: { type: 'object', additionalProperties: true } } }, 'Config'),
        ...errors(404, 503),
      },
    }),
    infer: (version: boolean) => ({
      summary: 'Open Inference Protocol: inference',
      description:
        `One input: \`input\` (FP32 [N, 3, size, size], preprocessed) or \`image\` (BYTES [N], encoded image files; ` +
        `base64 strings in JSON, raw with the binary-data extension), N at most ${maxImages}. Outputs: ` +
        '`probabilities`, `logits`, `embedding` (FP32) and `label` (BYTES); `parameters.classification: k` gives the ' +
        'top k as "score:index:label"; `parameters.binary_data: true` sends an output as binary data. With the ' +
        'binary-data extension the body is the JSON header (its length in `Inference-Header-Content-Length`) followed ' +
        'by the binary tensors, each `parameters.binary_data_size` bytes.',
      tags,
      params: params(version),
      body: {
        content: {
          'application/json': {
            schema: {
              type: 'object',
              required: ['inputs'],
              properties: {
                id: { type: 'string' },
                parameters: { type: 'object', additionalProperties: true },
                inputs: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['name', 'shape', 'datatype'],
                    properties: {
                      name: { type: 'string' },
                      shape: { type: 'array', items: { type: 'integer' } },
                      datatype: { type: 'string' },
                      parameters: { type: 'object', additionalProperties: true },
                      data: { type: 'array', items: {} },
                    },
                  },
                },
                outputs: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['name'],
                    properties: {
                      name: { type: 'string' },
                      parameters: { type: 'object', additionalProperties: true },
                    },
                  },
                },
              },
              'x-examples': {
                image: {
                  summary: 'one encoded image (base64), its label and top-3 classes',
                  value: {
                    inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [exampleImage] }],
                    outputs: [{ name: 'label' }, { name: 'probabilities', parameters: { classification: 3 } }],
                  },
                },
              },
            },
          },
          'application/octet-stream': {
            schema: {
              type: 'string',
              format: 'binary',
              description: 'The binary-data extension: JSON header, then the binary tensors',
            },
          },
        },
      },
      response: {
        200: {
          description: 'Outputs (JSON, or JSON header and binary outputs with Inference-Header-Content-Length)',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                properties: {
                  model_name: { type: 'string' },
                  model_version: { type: 'string' },
                  id: { type: 'string' },
                  outputs: { type: 'array', items: { type: 'object', additionalProperties: true } },
                },
              },
            },
            'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
          },
        },
        ...errors(400, 404, 413, 500, 503),
      },
    }),
  };
}
