// The LeNet-300-100 training step (784-300-100-10, ReLU, softmax cross-entropy, Adam 1e-3)
// two ways: through @rs/core, and as a hand-written tfjs-core loop doing the same math.
import { tf, Model, lenet300100, trainStep, adam, softmaxCrossEntropy } from '@rs/core';

export function batch(size, seed = 1) {
  const x = tf.randomUniform([size, 784], 0, 1, 'float32', seed);
  const y = tf.randomUniformInt([size], 0, 10, seed + 1);
  return { x, y };
}

/** A step through @rs/core: Model + trainStep + core's Adam. Returns a function doing one step. */
export function coreStep({ x, y }) {
  const model = Model.create(lenet300100(), { seed: 0 });
  const optimizer = adam({ learningRate: 1e-3 });
  return { step: () => trainStep(model, [x], y, softmaxCrossEntropy, optimizer).loss, dispose: () => model.dispose() };
}

/** The same math written directly against tfjs-core: tensors, valueAndGrads, Adam by hand. */
export function handStep({ x, y }) {
  const model = Model.create(lenet300100(), { seed: 0 }); // only to get identical initial weights
  let params = model.paramKeys().map((k) => tf.keep(tf.clone(model.param(k).value)));
  model.dispose();
  let m = params.map((p) => tf.keep(tf.zerosLike(p)));
  let v = params.map((p) => tf.keep(tf.zerosLike(p)));
  const [lr, b1, b2, eps] = [1e-3, 0.9, 0.999, 1e-8];
  let t = 0;
  const loss = (w1, c1, w2, c2, w3, c3) => {
    const h1 = tf.relu(tf.add(tf.matMul(x, w1), c1));
    const h2 = tf.relu(tf.add(tf.matMul(h1, w2), c2));
    const logits = tf.add(tf.matMul(h2, w3), c3);
    const labels = tf.oneHot(y, 10);
    return tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), -1)));
  };
  const step = () => {
    t += 1;
    const { value, grads } = tf.tidy(() => tf.valueAndGrads(loss)(params));
    const c1 = 1 - b1 ** t;
    const c2 = 1 - b2 ** t;
    const next = params.map((p, i) => {
      const g = grads[i];
      const mi = tf.keep(tf.tidy(() => tf.add(tf.mul(m[i], b1), tf.mul(g, 1 - b1))));
      const vi = tf.keep(tf.tidy(() => tf.add(tf.mul(v[i], b2), tf.mul(tf.square(g), 1 - b2))));
      const pi = tf.keep(tf.tidy(() => tf.sub(p, tf.mul(tf.div(tf.div(mi, c1), tf.add(tf.sqrt(tf.div(vi, c2)), eps)), lr))));
      m[i].dispose();
      v[i].dispose();
      m[i] = mi;
      v[i] = vi;
      return pi;
    });
    tf.dispose([...params, ...grads]);
    params = next;
    const l = value.dataSync()[0];
    value.dispose();
    return l;
  };
  return { step, dispose: () => tf.dispose([...params, ...m, ...v]) };
}
