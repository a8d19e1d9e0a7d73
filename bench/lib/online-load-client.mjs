// Load generator process of bench/online-load.mjs: autocannon against POST /predict (a fixed
// number of requests, so that every request sent is waited for), recording
// the end time (ms since the epoch) and latency of every response; sends them to its parent.
import autocannon from 'autocannon';

process.once('message', ({ url, connections, amount, bodies }) => {
  const ends = [];
  const latencies = [];
  const statuses = new Map();
  const instance = autocannon({
    url,
    connections,
    amount,
    timeout: 10,
    requests: bodies.map((body) => ({ method: 'POST', path: '/predict', headers: { 'content-type': 'application/json' }, body })),
  });
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    ends.push(performance.timeOrigin + performance.now());
    latencies.push(responseTime);
    statuses.set(statusCode, (statuses.get(statusCode) ?? 0) + 1);
  });
  instance.on('done', (result) => {
    process.send({ ends, latencies, statuses: Object.fromEntries(statuses), result: { sent: result.requests.sent, total: result.requests.total, errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx, mismatches: result.mismatches, resets: result.resets, latency: result.latency } }, () => process.exit(0));
  });
});
