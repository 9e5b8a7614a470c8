import { describe, expect, it } from 'vitest';

import { ProtocolValidationError } from './errors.js';
import { ELEMENTWISE_FLOPS_PER_ELEMENT, estimateModelFlops } from './model-flops.js';

const E = ELEMENTWISE_FLOPS_PER_ELEMENT;

function sequential(layers: unknown[]): unknown {
  return {
    format: 'layers-model',
    modelTopology: { class_name: 'Sequential', config: { name: 'm', layers } },
  };
}

function invalid(fn: () => unknown): ProtocolValidationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolValidationError) return err;
    throw err;
  }
  throw new Error('expected INVALID_MODEL');
}

describe('estimateModelFlops: layers models', () => {
  it('counts Dense layers as 2·in·units plus activation cost', () => {
    const model = sequential([
      { class_name: 'Dense', config: { units: 16, activation: 'relu', batch_input_shape: [null, 8] } },
      { class_name: 'Dense', config: { units: 2, activation: 'linear' } },
    ]);
    expect(estimateModelFlops(model)).toBe(2n * 8n * 16n + E * 16n + 2n * 16n * 2n);
  });

  it('counts Conv2D with valid and same padding and strides', () => {
    const model = sequential([
      {
        class_name: 'Conv2D',
        config: {
          filters: 8,
          kernel_size: [3, 3],
          strides: [1, 1],
          padding: 'valid',
          batch_input_shape: [null, 28, 28, 1],
        },
      },
      { class_name: 'Conv2D', config: { filters: 4, kernel_size: 3, strides: 2, padding: 'same' } },
      { class_name: 'Flatten', config: {} },
      { class_name: 'Dense', config: { units: 10 } },
    ]);
    const conv1 = 2n * 3n * 3n * 1n * 8n * 26n * 26n;
    const conv2 = 2n * 3n * 3n * 8n * 4n * 13n * 13n;
    const dense = 2n * (13n * 13n * 4n) * 10n;
    expect(estimateModelFlops(model)).toBe(conv1 + conv2 + dense);
  });

  it('reads model_config layouts and functional inbound nodes', () => {
    const model = {
      modelTopology: {
        model_config: {
          class_name: 'Model',
          config: {
            layers: [
              {
                class_name: 'InputLayer',
                name: 'in',
                config: { batch_input_shape: [null, 4] },
                inbound_nodes: [],
              },
              { class_name: 'Dense', name: 'd1', config: { units: 3 }, inbound_nodes: [[['in', 0, 0, {}]]] },
              { class_name: 'Dense', name: 'd2', config: { units: 5 }, inbound_nodes: [[['in', 0, 0, {}]]] },
            ],
          },
        },
      },
    };
    expect(estimateModelFlops(model)).toBe(2n * 4n * 3n + 2n * 4n * 5n);
  });

  it('charges a per-element cost for other layers', () => {
    const model = sequential([
      { class_name: 'Dense', config: { units: 10, batch_input_shape: [null, 10] } },
      { class_name: 'BatchNormalization', config: {} },
      { class_name: 'Dropout', config: { rate: 0.5 } },
    ]);
    expect(estimateModelFlops(model)).toBe(2n * 10n * 10n + E * 10n);
  });

  it('throws INVALID_MODEL with a path for unparseable models', () => {
    expect(invalid(() => estimateModelFlops('nope')).code).toBe('INVALID_MODEL');
    expect(invalid(() => estimateModelFlops({ modelTopology: {} })).message).toContain('config.layers');
    const noShape = invalid(() =>
      estimateModelFlops(sequential([{ class_name: 'Dense', config: { units: 3 } }])),
    );
    expect(noShape.message).toContain('modelTopology.config.layers[0]');
    expect(noShape.message).toContain('Dense');
    const badUnits = invalid(() =>
      estimateModelFlops(
        sequential([{ class_name: 'Dense', config: { units: 1.5, batch_input_shape: [null, 2] } }]),
      ),
    );
    expect(badUnits.message).toContain('positive integer units');
  });
});

describe('estimateModelFlops: graph models', () => {
  const weights = [{ paths: ['w.bin'], weights: [{ name: 'w', shape: [784, 10], dtype: 'float32' }] }];

  it('counts MatMul nodes when operand shapes are known', () => {
    const model = {
      format: 'graph-model',
      modelTopology: {
        node: [
          {
            name: 'x',
            op: 'Placeholder',
            attr: { shape: { shape: { dim: [{ size: '-1' }, { size: '784' }] } } },
          },
          { name: 'w', op: 'Const', attr: {} },
          { name: 'mm', op: 'MatMul', input: ['x', 'w'], attr: { transpose_a: { b: false } } },
        ],
      },
      weightsManifest: weights,
    };
    expect(estimateModelFlops(model)).toBe(2n * 784n * 10n);
  });

  it('counts Conv2D from declared output shapes', () => {
    const model = {
      format: 'graph-model',
      modelTopology: {
        node: [
          { name: 'x', op: 'Placeholder', attr: {} },
          {
            name: 'conv',
            op: 'Conv2D',
            input: ['x', 'k'],
            attr: {
              _output_shapes: {
                list: { shape: [{ dim: [{ size: '-1' }, { size: '6' }, { size: '6' }, { size: '2' }] }] },
              },
            },
          },
        ],
      },
      weightsManifest: [{ paths: [], weights: [{ name: 'k', shape: [3, 3, 1, 2], dtype: 'float32' }] }],
    };
    expect(estimateModelFlops(model, 'graph')).toBe(2n * 3n * 3n * 1n * 2n * 6n * 6n);
  });

  it('falls back to 2 × weight bytes when shapes are missing', () => {
    const model = {
      format: 'graph-model',
      modelTopology: { node: [{ name: 'mm', op: 'MatMul', input: ['x', 'w'] }] },
      weightsManifest: weights,
    };
    expect(estimateModelFlops(model)).toBe(784n * 10n * 4n * 2n);
  });

  it('throws when nothing can be estimated', () => {
    const model = {
      format: 'graph-model',
      modelTopology: { node: [{ name: 'mm', op: 'MatMul', input: ['x', 'w'] }] },
    };
    expect(invalid(() => estimateModelFlops(model)).message).toContain('weightsManifest');
    expect(
      invalid(() => estimateModelFlops({ format: 'graph-model', modelTopology: { node: [{}] } })).message,
    ).toContain('modelTopology.node[0]');
  });
});
