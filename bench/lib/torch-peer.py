# The PyTorch / numpy side of bench/vs-pytorch.mjs: a worker that reads one JSON command per line
# on stdin, runs it, and answers one JSON line on stdout. Timings are taken here (perf_counter
# around each call), so pipe traffic is not counted. The models mirror @rs/core's lenet300100 and
# charTransformer (same shapes, same op sequence, initialisation aside).
import json, math, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
torch.manual_seed(0)


def lenet():
    return nn.Sequential(nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10))


def lenet5():
    # @rs/core's lenet5(): conv 5x5 6 'same', relu, max pool 2, conv 5x5 16 'valid', relu, max
    # pool 2, dense 400-120-84-10 with relu (PyTorch is NCHW; the shapes are the same).
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.ln2 = nn.LayerNorm(dim)
        self.ffn1 = nn.Linear(dim, 4 * dim)
        self.ffn2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        n, t, d = x.shape
        h = self.ln1(x)
        split = lambda y: y.view(n, t, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
        scores = scores.masked_fill(mask, -1e9)
        mixed = (scores.softmax(-1) @ v).transpose(1, 2).reshape(n, t, d)
        x = x + self.o(mixed)
        return x + self.ffn2(F.gelu(self.ffn1(self.ln2(x)), approximate='tanh'))


class CharTransformer(nn.Module):
    def __init__(self, vocab, context, dim, heads, layers):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(torch.zeros(context, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, tokens):
        x = self.embed(tokens) + self.position
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln(x))


state = {}


def time_calls(fn, repeats, warmup):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        s = time.perf_counter()
        fn()
        out.append((time.perf_counter() - s) * 1000)
    return out


def classifier_step(model, x, y):
    """One Adam (1e-3) step of `model` on the batch (x, y) with cross-entropy, as a function."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return step


def setup(cmd):
    g = torch.Generator().manual_seed(cmd.get('seed', 0))
    if cmd['what'] == 'lenet_step':
        return classifier_step(lenet(), torch.rand(cmd['batch'], 784, generator=g), torch.randint(0, 10, (cmd['batch'],), generator=g))
    if cmd['what'] == 'lenet5_step':
        torch.manual_seed(cmd.get('seed', 0))
        return classifier_step(lenet5(), torch.rand(cmd['batch'], 1, 28, 28, generator=g), torch.randint(0, 10, (cmd['batch'],), generator=g))
    if cmd['what'] == 'transformer_step':
        model = CharTransformer(cmd['vocab'], cmd['context'], cmd['dim'], cmd['heads'], cmd['layers'])
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        x = torch.randint(0, cmd['vocab'], (cmd['batch'], cmd['context']), generator=g)
        y = torch.randint(0, cmd['vocab'], (cmd['batch'], cmd['context']), generator=g)

        def step():
            opt.zero_grad()
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, cmd['vocab']), y.reshape(-1))
            loss.backward()
            opt.step()
        return step
    if cmd['what'] == 'lenet_infer':
        model = lenet().eval()
        x = np.random.default_rng(cmd.get('seed', 0)).random((cmd['batch'], 784), dtype=np.float32)

        def infer():
            # Host array in, host array out, as on the other side.
            with torch.no_grad():
                model(torch.from_numpy(x)).numpy()
        return infer
    if cmd['what'] in ('torch_gemm', 'numpy_gemm'):
        n = cmd['n']
        rng = np.random.default_rng(cmd.get('seed', 0))
        a = rng.random((n, n), dtype=np.float32)
        b = rng.random((n, n), dtype=np.float32)
        if cmd['what'] == 'numpy_gemm':
            return lambda: a @ b
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        return lambda: torch.mm(ta, tb)
    raise ValueError('unknown workload ' + cmd['what'])


for line in sys.stdin:
    cmd = json.loads(line)
    try:
        if cmd['op'] == 'setup':
            state[cmd['key']] = setup(cmd)
            reply = {'ok': True}
        elif cmd['op'] == 'time':
            reply = {'ok': True, 'ms': time_calls(state[cmd['key']], cmd['repeats'], cmd['warmup'])}
        elif cmd['op'] == 'versions':
            reply = {'ok': True, 'torch': torch.__version__, 'numpy': np.__version__, 'threads': torch.get_num_threads(),
                     'blas': torch.__config__.show().split('BLAS_INFO=')[1].split(',')[0] if 'BLAS_INFO=' in torch.__config__.show() else 'unknown'}
        else:
            reply = {'ok': False, 'error': 'unknown op'}
    except Exception as e:  # reported to the benchmark, which fails with it
        reply = {'ok': False, 'error': repr(e)}
    sys.stdout.write(json.dumps(reply) + '\n')
    sys.stdout.flush()
