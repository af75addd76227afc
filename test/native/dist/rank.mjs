// One rank of the process-group tests, run as its own Node process with torchrun's environment variables. It joins,
// all-reduces [rank + 1, 10 (rank + 1)], broadcasts [100 rank, -rank] from the last rank, meets a barrier, and prints
// the results as one JSON line. DIST_TEST_EXIT_AFTER_JOIN=1: it leaves right after joining (a rank that dies).
import { ProcessGroup } from '../../../dist/dist/ProcessGroup.js';

const started = Date.now();
try {
  const pg = await ProcessGroup.init();
  if (process.env.DIST_TEST_EXIT_AFTER_JOIN === '1') process.exit(0);
  const r = pg.rank;
  const sum = await pg.allReduce(new Float32Array([r + 1, 10 * (r + 1)]), 'sum');
  const avg = await pg.allReduce(new Float32Array([r + 1]), 'avg');
  const max = await pg.allReduce(new Float32Array([r + 1]), 'max');
  const bcast = await pg.broadcast(new Float32Array([100 * r, -r]), pg.worldSize - 1);
  await pg.barrier();
  await pg.destroy();
  console.log(JSON.stringify({ rank: r, sum: [...sum], avg: [...avg], max: [...max], bcast: [...bcast] }));
} catch (err) {
  console.log(JSON.stringify({ error: err.message, code: err.code, ms: Date.now() - started }));
  process.exit(3);
}
