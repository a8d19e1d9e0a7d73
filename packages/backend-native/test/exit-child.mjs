// Child process for the clean-exit test: uses the native backend (OpenMP and BLAS threads),
// then simply ends. With RS_NATIVE_LIBRARY pointing nowhere it reports install()'s error instead
// and shows that the cpu backend still works.
import { tf } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { install, setGemm } from '@rs/backend-native';

await installCpu({ activate: false });
try {
  const info = await install({ threads: 2 });
  const a = tf.randomNormal([512, 512]);
  const product = tf.matMul(a, a);
  const step = tf.relu(tf.add(product, 1));
  const { blas, blasCore, gemm, ownGemmBits } = info.capabilities;
  // With RS_CHILD_AUTO: what setGemm('auto') does in this process (RS_BLAS=none: no BLAS loaded).
  let autoError = null;
  if (process.env.RS_CHILD_AUTO) {
    try {
      setGemm('auto');
    } catch (error) {
      autoError = error.code;
    }
  }
  console.log(JSON.stringify({ backend: tf.getBackend(), threads: info.capabilities.threads, blas, blasCore, gemm, ownGemmBits, coretypeAfter: process.env.OPENBLAS_CORETYPE ?? null, autoError, wait: { GOMP_SPINCOUNT: process.env.GOMP_SPINCOUNT ?? null, KMP_BLOCKTIME: process.env.KMP_BLOCKTIME ?? null, OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? null }, value: tf.sum(step).dataSync()[0] }));
} catch (error) {
  await tf.setBackend('cpu');
  const value = tf.sum(tf.matMul(tf.ones([4, 4]), tf.ones([4, 4]))).dataSync()[0];
  console.log(JSON.stringify({ error: { name: error.name, code: error.code, missing: error.details?.missing, message: error.message }, backend: tf.getBackend(), value }));
}
