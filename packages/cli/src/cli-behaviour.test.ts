// CLI behaviour across commands: progress, errors and exit codes, output paths and option values,
// prune -> grow, the built binary; the harness is in cli.test-util.ts.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { load } from '@rs/core';
import { dir, packageRoot, rs, file, TINY, useTinyModel } from './cli.test-util';

useTinyModel();

describe('progress', () => {
  it('draws a bar with ETA on a terminal and plain lines elsewhere', async () => {
    const tty = await rs(['train', ...TINY, '--epochs', '2', '--out', 'p.rsm'], { tty: true });
    expect(tty.status).toBe(0);
    expect(tty.stderr).toMatch(/train \|[█░]+\| 100% \| 10\/10 steps \| ETA\s+0s \| epoch 2\/2 loss \d\.\d{4}/);
    expect(tty.stderr).toContain('\x1b['); // cursor control: the bar is redrawn in place
    const plain = await rs(['train', ...TINY, '--epochs', '2', '--out', 'p.rsm']);
    expect(plain.stderr).not.toContain('\x1b[');
    const lines = plain.stderr.split('\n').filter((l) => l.startsWith('train '));
    expect(lines).toHaveLength(2); // one per epoch
    expect(lines[1]).toMatch(/^train 10\/10 steps {2}epoch 2\/2 loss \d\.\d{4} {2}\(.* elapsed, ETA 0\.0 s\)$/);
    const quiet = await rs(['train', ...TINY, '--out', 'p.rsm', '--quiet'], { tty: true });
    expect(quiet.stderr).toBe('');
  });
});

describe('errors', () => {
  it('a missing file is one clear line and exit code 1', async () => {
    const result = await rs(['inspect', 'nope.rsm']);
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(`rs inspect: [FILE_NOT_FOUND] Model file ${file('nope.rsm')} does not exist.\n`);
  });

  it('with --json the error is a JSON document', async () => {
    const result = await rs(['prune', 'nope.rsm', '--sparsity', '0.5', '--out', 'x.rsm', '--json']);
    expect(result.status).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({ error: { code: 'FILE_NOT_FOUND', message: `Model file ${file('nope.rsm')} does not exist.` } });
  });

  it('a corrupt file keeps the loader\'s code', async () => {
    const bytes = readFileSync(file('tiny.rsm'));
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(file('corrupt.rsm'), bytes);
    const result = await rs(['inspect', 'corrupt.rsm']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^rs inspect: \[IO_CORRUPT\] The data section's CRC32 does not match/);
  });

  it('usage errors exit with 2 and code USAGE', async () => {
    const unknownFlag = await rs(['inspect', 'tiny.rsm', '--frobnicate']);
    expect(unknownFlag.status).toBe(2);
    expect(unknownFlag.stderr).toMatch(/^rs inspect: \[USAGE\] unknown option '--frobnicate'/);
    const badValue = await rs(['prune', 'tiny.rsm', '--sparsity', '1.5', '--out', 'x.rsm']);
    expect(badValue.status).toBe(2);
    expect(badValue.stderr).toMatch(/\[USAGE\] --sparsity must be a number >= 0 and < 1, got '1\.5'/);
    const missing = await rs(['prune', 'tiny.rsm', '--sparsity', '0.5']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/\[USAGE\] required option '--out <file.rsm>' not specified/);
    const json = await rs(['grow', 'tiny.rsm', '--out', 'x.rsm', '--json']);
    expect(json.status).toBe(2);
    expect(JSON.parse(json.stdout).error.code).toBe('USAGE');
    const command = await rs(['frobnicate']);
    expect(command.status).toBe(2);
    expect(command.stderr).toMatch(/\[USAGE\] unknown command 'frobnicate'/);
  });

  it('--help and --version exit 0', async () => {
    const help = await rs(['prune', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--sparsity <s>');
    const version = await rs(['--version']);
    expect(version.status).toBe(0);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')).version);
  });
});

describe('output paths and option values', () => {
  it('an --out (or --checkpoint) whose directory does not exist is a usage error naming it, and nothing is created', async () => {
    const cases: [string[], string][] = [
      [['export', 'tiny.rsm', '--out', 'missing/dir/x.onnx'], 'missing/dir/x.onnx'],
      [['prune', 'tiny.rsm', '--sparsity', '0.5', '--out', 'missing/dir/p.rsm'], 'missing/dir/p.rsm'],
      [['grow', 'tiny.rsm', '--group', 'fc1', '--units', '2', '--out', 'missing/dir/g.rsm'], 'missing/dir/g.rsm'],
      [['train', ...TINY, '--out', 'missing/dir/t.rsm'], 'missing/dir/t.rsm'],
      [['report', 'tiny.rsm', '--out', 'missing/dir/r.html', '--backend', 'cpu'], 'missing/dir/r.html'],
      [['search', '--space', 'mnist-mlp', '--evaluations', '1', '--out', 'missing/dir/s.rsm'], 'missing/dir/s.rsm'],
      [['search', '--evaluations', '1', '--checkpoint', 'missing/dir/c.json'], 'missing/dir/c.json'],
    ];
    for (const [args, path] of cases) {
      const result = await rs(args);
      expect(result.status, args.join(' ')).toBe(2);
      const flag = args.includes('--checkpoint') ? '--checkpoint' : '--out';
      expect(result.stderr, args.join(' ')).toContain(`[USAGE] ${flag} ${path}: the directory ${join(dir, 'missing', 'dir')} does not exist`);
      expect(result.stdout).toBe('');
      expect(result.leaked).toBe(0);
      expect(existsSync(file('missing')), `${args[0]} created the directory`).toBe(false);
    }
    const json = await rs(['export', 'tiny.rsm', '--out', 'missing/x.onnx', '--json']);
    expect(json.status).toBe(2);
    expect(JSON.parse(json.stdout).error).toMatchObject({ code: 'USAGE' });
    // An --out that is a directory is refused the same way.
    const directory = await rs(['export', 'tiny.rsm', '--out', '.']);
    expect(directory.status).toBe(2);
    expect(directory.stderr).toContain('[USAGE] --out . is a directory');
    // An existing directory is fine.
    const ok = await rs(['export', 'tiny.rsm', '--out', 'x.onnx']);
    expect(ok.status).toBe(0);
  });

  it('bad numeric and choice values exit 2 with the allowed values, never 1 or a stack trace', async () => {
    const cases: [string[], RegExp][] = [
      [['export', 'tiny.rsm', '--out', 'x.onnx', '--opset', '9'], /--opset must be one of 17, 18, 19, 20, 21; got '9'/],
      [['export', 'tiny.rsm', '--out', 'x.onnx', '--opset', '22'], /--opset must be one of 17, 18, 19, 20, 21; got '22'/],
      [['export', 'tiny.rsm', '--out', 'x.onnx', '--opset', 'abc'], /--opset must be one of 17, 18, 19, 20, 21/],
      [['export', 'tiny.rsm', '--check', '--opset', '16'], /--opset must be one of/],
      [['export', 'tiny.rsm', '--out', 'x.onnx', '--batch', '0'], /--batch must be an integer >= 1/],
      [['export', 'tiny.rsm', '--out', 'x.onnx', '--format', 'tflite'], /--format must be one of onnx/],
      [['prune', 'tiny.rsm', '--sparsity', '0.5', '--score', 'l3', '--out', 'x.rsm'], /--score must be one of l1, l2, .*; got 'l3'/],
      [['prune', 'tiny.rsm', '--sparsity', '0.5', '--score', 'taylor', '--out', 'x.rsm'], /--score taylor needs --data/],
      [['prune', 'tiny.rsm', '--sparsity', '0.5', '--scope', 'all', '--out', 'x.rsm'], /--scope must be one of global, layer/],
      [['prune', 'tiny.rsm', '--units', '-0.1', '--out', 'x.rsm'], /--units must be a number >= 0 and < 1/],
      [['prune', 'tiny.rsm', '--sparsity', '0.5', '--lr', 'fast', '--out', 'x.rsm'], /--lr must be a number >= 0/],
      [['grow', 'tiny.rsm', '--group', 'fc1', '--units', '2.5', '--out', 'x.rsm'], /--units must be an integer >= 1/],
      [['grow', 'tiny.rsm', '--group', 'fc1', '--units', '2', '--method', 'magic', '--out', 'x.rsm'], /--method must be one of net2net, gradmax, zeros/],
      [['grow', 'tiny.rsm', '--group', 'fc1', '--units', '2', '--noise', '-1', '--out', 'x.rsm'], /--noise must be a number >= 0/],
      [['grow', 'tiny.rsm', '--group', 'fc1', '--units', '2', '--backend', 'gpu', '--out', 'x.rsm'], /--backend must be one of wasm, native, cpu/],
      [['grow', 'tiny.rsm', '--group', 'fc1', '--units', '2', '--threads', '0', '--out', 'x.rsm'], /--threads must be an integer >= 1/],
      [['train', ...TINY, '--epochs', '0', '--out', 'x.rsm'], /--epochs must be an integer >= 1/],
      [['train', ...TINY, '--data', 'cifar', '--out', 'x.rsm'], /--data must be one of mnist, spirals/],
      [['train', ...TINY, '--hidden', '32', '--out', 'x.rsm'], /--hidden takes two widths/],
      [['train', ...TINY, '--train-size', '0', '--out', 'x.rsm'], /--train-size must be an integer >= 1/],
      [['report', 'tiny.rsm', '--out', 'r.html', '--data', 'mnist', '--test-size', 'x', '--backend', 'cpu'], /--test-size must be an integer >= 1/],
      [['bench', 'tiny.rsm', '--repeats', '0'], /--repeats must be an integer >= 1/],
      [['bench', 'tiny.rsm', '--baseline', 'tpu'], /--baseline must be one of wasm, native, cpu/],
      [['search', '--strategy', 'bayes'], /--strategy must be one of random, evolution, reinforce/],
      [['search', '--evaluations', '0'], /--evaluations must be an integer >= 1/],
      [['search', '--space', 'mnist-mlp', '--train-size', '9000'], /--train-size must be an integer >= 1 and <= 7000/],
    ];
    for (const [args, message] of cases) {
      const result = await rs(args);
      expect(result.status, `${args.join(' ')}: ${result.stderr}`).toBe(2);
      expect(result.stderr, args.join(' ')).toMatch(/^rs \w+: \[USAGE\] /);
      expect(result.stderr, args.join(' ')).toMatch(message);
      expect(result.stderr).not.toMatch(/\n\s+at /);
      expect(result.leaked).toBe(0);
    }
  });
});

describe('rs prune -> rs grow keeps the masks', () => {
  it('a pruned model widened by rs grow: copies keep their source\'s pruned weights at 0, counts agree, training keeps them 0', async () => {
    const pruned = await rs(['prune', 'tiny.rsm', '--sparsity', '0.5', '--scope', 'layer', '--backend', 'cpu', '--out', 'masked.rsm', '-q']);
    expect(pruned.status).toBe(0);
    const grown = await rs(['grow', 'masked.rsm', '--group', 'fc1', '--units', '8', '--out', 'masked-grown.rsm', '--json']);
    expect(grown.status).toBe(0);
    expect(grown.leaked).toBe(0);
    const doc = JSON.parse(grown.stdout);
    expect(doc.outputCheck.maxAbsDiff).toBeLessThan(1e-5);
    const model = await load(file('masked-grown.rsm'));
    let nonzero = 0;
    for (const key of model.paramKeys()) {
      const entry = model.param(key);
      if (key.endsWith('/kernel')) expect(entry.mask, key).toBeDefined();
      if (!entry.mask) {
        nonzero += entry.value.size;
        continue;
      }
      const value = entry.value.dataSync();
      const mask = entry.mask.dataSync();
      mask.forEach((m, i) => {
        if (m === 0) expect(Math.abs(value[i]), `${key}[${i}]`).toBe(0);
        if (value[i] !== 0) nonzero += 1;
      });
    }
    expect(model.counts().nonzeroParams).toBe(nonzero);
    expect(doc.after.nonzeroParams).toBe(nonzero);
    // Train the grown model further: the pruned positions stay exactly 0.
    const trained = await rs(['train', '--model', 'masked-grown.rsm', '--data', 'mnist', '--epochs', '1', '--batch-size', '64', '--train-size', '300', '--test-size', '100', '--backend', 'cpu', '--out', 'masked-trained.rsm', '-q']);
    expect(trained.status).toBe(0);
    const after = await load(file('masked-trained.rsm'));
    for (const key of model.paramKeys()) {
      const mask = model.param(key).mask?.dataSync();
      if (!mask) continue;
      const value = after.param(key).value.dataSync();
      expect(mask.filter((m, i) => m === 0 && value[i] !== 0).length, key).toBe(0);
    }
    model.dispose();
    after.dispose();
  });
});

describe('the built binary', () => {
  const bin = join(packageRoot, 'dist', 'bin.js');
  it('runs through its shebang entry (build first: pnpm build)', () => {
    expect(existsSync(bin), `${bin} is missing: build @rs/cli first (pnpm turbo run build --filter=@rs/cli)`).toBe(true);
    expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: rs \[options\] \[command\]/);
    const inspect = spawnSync(process.execPath, [bin, 'inspect', file('tiny.rsm'), '--json'], { encoding: 'utf8' });
    expect(inspect.status).toBe(0);
    expect(JSON.parse(inspect.stdout).totals.params).toBe(25_818);
    const error = spawnSync(process.execPath, [bin, 'inspect', file('nope.rsm')], { encoding: 'utf8' });
    expect(error.status).toBe(1);
    expect(error.stderr).toContain('[FILE_NOT_FOUND]');
  });
});
