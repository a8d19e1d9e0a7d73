// The B-LeNet trunk shared by the early-exit benches: conv1 is cheap, everything after the
// branch point (pool1) is where the cost is.
export function bLenetGraph() {
  return {
    inputs: [{ id: 'x', shape: [null, 28, 28, 1], dtype: 'float32' }],
    nodes: [
      { id: 'conv1', op: 'conv2d', inputs: ['x'], attrs: { filters: 6, kernelSize: 5, padding: 'same' } },
      { id: 'relu1', op: 'relu', inputs: ['conv1'], attrs: {} },
      { id: 'pool1', op: 'maxPool2d', inputs: ['relu1'], attrs: { poolSize: 2 } },
      { id: 'conv2', op: 'conv2d', inputs: ['pool1'], attrs: { filters: 32, kernelSize: 3, padding: 'same' } },
      { id: 'relu2', op: 'relu', inputs: ['conv2'], attrs: {} },
      { id: 'pool2', op: 'maxPool2d', inputs: ['relu2'], attrs: { poolSize: 2 } },
      { id: 'conv3', op: 'conv2d', inputs: ['pool2'], attrs: { filters: 32, kernelSize: 3, padding: 'same' } },
      { id: 'relu3', op: 'relu', inputs: ['conv3'], attrs: {} },
      { id: 'flatten', op: 'flatten', inputs: ['relu3'], attrs: {} },
      { id: 'fc1', op: 'dense', inputs: ['flatten'], attrs: { units: 256 } },
      { id: 'relu4', op: 'relu', inputs: ['fc1'], attrs: {} },
      { id: 'fc2', op: 'dense', inputs: ['relu4'], attrs: { units: 10 } },
    ],
    outputs: ['fc2'],
  };
}
