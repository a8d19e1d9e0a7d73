#!/usr/bin/python3
"""Makes the ONNX fixtures of the import tests (packages/onnx/fixtures/import) with PyTorch's own
exporter: Debian's python3-torch 1.13 and python3-torchvision 0.14, run with /usr/bin/python3.
CI does not run this script; its outputs are committed.

  node packages/onnx/scripts/dump-mnist.mjs /tmp/rs-mnist   # MNIST of @rs/datasets, seed 0
  /usr/bin/python3 scripts/make-import-fixtures.py /tmp/rs-mnist

Models (all exported with a dynamic batch axis and BatchNormalization kept, training=PRESERVE
on models in eval mode, so the exporter does not fold BatchNorm into the convolutions):
  lenet.onnx        LeNet-300-100 trained on MNIST (opset 13)
  cnn.onnx          conv8-bn-relu-pool, conv16-bn-relu-pool, flatten, linear: trained (opset 17)
  resnet20.onnx     CIFAR ResNet-20 (16/32/64 channels, 1x1 projection shortcuts), random init,
                    BatchNorm statistics made non-trivial (opset 13)
  mobilenetv2.onnx  torchvision mobilenet_v2(width_mult=0.35, num_classes=10), random init (opset 15)
  transformer.onnx  embedding(50, 32), 2-layer nn.TransformerEncoder (4 heads), mean, linear (opset 17)
  gelu-layernorm13.onnx  linear, GELU, LayerNorm, linear at opset 13 (both in decomposed form)
  unsupported.onnx  a MatMul, a Loop and a NonMaxSuppression (onnx.helper)
mnist-predictions.json holds PyTorch's predicted class of each of the 2,000 test digits for the
two MNIST models and their accuracies.
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torchvision

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'packages', 'onnx', 'fixtures', 'import')
torch.manual_seed(0)
torch.set_num_threads(1)


def load_mnist(directory):
    def read(name, dtype):
        return np.fromfile(os.path.join(directory, name), dtype=dtype)
    train_x = read('train-x.f32', '<f4').reshape(-1, 1, 28, 28)
    train_y = read('train-y.i32', '<i4').astype(np.int64)
    test_x = read('test-x.f32', '<f4').reshape(-1, 1, 28, 28)
    test_y = read('test-y.i32', '<i4').astype(np.int64)
    return torch.from_numpy(train_x), torch.from_numpy(train_y), torch.from_numpy(test_x), torch.from_numpy(test_y)


class LeNet300100(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, 10)

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class SmallCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class ResNet20(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks = []
        cin = 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                blocks.append(BasicBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.blocks(torch.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class TextEncoder(nn.Module):
    def __init__(self, vocab=50, width=32, heads=4, classes=5):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(width, classes)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens)).mean(dim=1))


class GeluNormMlp(nn.Module):
    """Linear, GELU (erf form), LayerNorm, Linear: exported at opset 13, where PyTorch writes
    GELU as Div/Erf/Add/Mul/Mul and LayerNorm as ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        return self.fc2(self.norm(self.act(self.fc1(x))))


def randomize_batchnorm(model, seed):
    generator = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)


def train(model, x, y, epochs, lr, flat):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(1)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 100):
            idx = order[start:start + 100]
            xb = x[idx].reshape(len(idx), -1) if flat else x[idx]
            loss = nn.functional.cross_entropy(model(xb), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f'  epoch {epoch + 1}: loss {loss.item():.4f}', flush=True)
    model.eval()


def predict(model, x, flat):
    with torch.no_grad():
        return model(x.reshape(len(x), -1) if flat else x).argmax(dim=1)


def export(model, example, name, opset, input_name='x'):
    path = os.path.join(OUT, name)
    model.eval()
    torch.onnx.export(model, example, path, opset_version=opset, input_names=[input_name], output_names=['y'],
                      dynamic_axes={input_name: {0: 'batch'}, 'y': {0: 'batch'}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True)
    import onnx
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    ops = sorted({n.op_type for n in proto.graph.node})
    print(f'{name}: opset {opset}, {os.path.getsize(path)} bytes, ops {ops}', flush=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    if sys.argv[1:] == ['--unsupported-only']:
        write_unsupported()
        return
    if sys.argv[1:] == ['--decomposed-only']:
        write_decomposed()
        return
    train_x, train_y, test_x, test_y = load_mnist(sys.argv[1])
    predictions = {'source': 'PyTorch ' + torch.__version__ + ', test split of loadMnist() (seed 0), 2000 digits'}

    for name, model, flat, epochs, lr, opset in (('lenet', LeNet300100(), True, 6, 1e-3, 13),
                                                  ('cnn', SmallCnn(), False, 4, 2e-3, 17)):
        start = time.time()
        print(f'training {name}', flush=True)
        train(model, train_x, train_y, epochs, lr, flat)
        pred = predict(model, test_x, flat)
        accuracy = (pred == test_y).float().mean().item()
        print(f'  {name}: test accuracy {accuracy:.4f} ({time.time() - start:.0f} s)', flush=True)
        predictions[name] = {'accuracy': accuracy, 'predictions': pred.tolist()}
        example = test_x[:2].reshape(2, -1) if flat else test_x[:2]
        export(model, example, f'{name}.onnx', opset)

    with open(os.path.join(OUT, 'mnist-predictions.json'), 'w') as f:
        json.dump(predictions, f)

    resnet = ResNet20()
    randomize_batchnorm(resnet, 2)
    export(resnet, torch.randn(2, 3, 32, 32), 'resnet20.onnx', 13)

    mobilenet = torchvision.models.mobilenet_v2(width_mult=0.35, num_classes=10)
    randomize_batchnorm(mobilenet, 3)
    export(mobilenet, torch.randn(2, 3, 32, 32), 'mobilenetv2.onnx', 15)

    encoder = TextEncoder()
    export(encoder, torch.randint(0, 50, (2, 7)), 'transformer.onnx', 17, input_name='tokens')

    write_unsupported()
    write_decomposed()


def write_decomposed():
    mlp = GeluNormMlp()
    with torch.no_grad():
        mlp.norm.weight.copy_(torch.rand(32) + 0.5)
        mlp.norm.bias.copy_(torch.randn(32) * 0.1)
    export(mlp, torch.randn(2, 16), 'gelu-layernorm13.onnx', 13)


def write_unsupported():
    """unsupported.onnx: a dense layer followed by two ops the importer refuses (NonMaxSuppression,
    and a Loop), written with onnx.helper."""
    import onnx
    from onnx import helper, TensorProto, numpy_helper
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), 'w')
    boxes = helper.make_tensor_value_info('boxes', TensorProto.FLOAT, [1, 4, 4])
    scores = helper.make_tensor_value_info('scores', TensorProto.FLOAT, [1, 1, 4])
    body = helper.make_graph(
        [helper.make_node('Identity', ['cond_in'], ['cond_out']), helper.make_node('Relu', ['v_in'], ['v_out'])],
        'body',
        [helper.make_tensor_value_info('i', TensorProto.INT64, []), helper.make_tensor_value_info('cond_in', TensorProto.BOOL, []),
         helper.make_tensor_value_info('v_in', TensorProto.FLOAT, [1, 4, 4])],
        [helper.make_tensor_value_info('cond_out', TensorProto.BOOL, []), helper.make_tensor_value_info('v_out', TensorProto.FLOAT, [1, 4, 4])])
    trip = numpy_helper.from_array(np.array(2, dtype=np.int64), 'trip')
    cond = numpy_helper.from_array(np.array(True), 'cond')
    nodes = [
        helper.make_node('MatMul', ['boxes', 'w'], ['projected'], name='project'),
        helper.make_node('Loop', ['trip', 'cond', 'projected'], ['looped'], name='refine', body=body),
        helper.make_node('NonMaxSuppression', ['looped', 'scores'], ['selected'], name='nms'),
    ]
    graph = helper.make_graph(nodes, 'unsupported', [boxes, scores],
                              [helper.make_tensor_value_info('selected', TensorProto.INT64, [None, 3])], [w, trip, cond])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(OUT, 'unsupported.onnx'))
    print('unsupported.onnx written', flush=True)


if __name__ == '__main__':
    main()
