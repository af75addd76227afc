/**
 * The rooms of src/ and what each may import: a module may import its own room and the rooms below it in the data
 * flow, never one above (docs/ARCHITECTURE.md has the picture). Rooms of the same rank do not import each other.
 * Run by `npm run lint` (depcruise src).
 */
const RANKS = [
  ['errors'],
  ['util'],
  ['binding'],
  ['onnx'],
  ['data'],
  ['config'],
  ['torch'],
  ['dist'],
  ['track'],
  ['engine'],
  ['export', 'build'],
  ['train', 'predict'],
  ['bench', 'serve', 'doctor'],
  ['cli'],
  ['index'],
];

const room = (name) => (['errors', 'index', 'doctor'].includes(name) ? `^src/${name}\\.ts$` : `^src/${name}/`);
const rules = [];
RANKS.forEach((rooms, rank) => {
  const higher = RANKS.slice(rank + 1).flat();
  for (const name of rooms) {
    const sideways = rooms.filter((other) => other !== name);
    const forbidden = [...higher, ...sideways];
    if (forbidden.length === 0) continue;
    rules.push({
      name: `${name}-imports-up`,
      comment: `src/${name} may import only its own room and those below it: ${RANKS.slice(0, rank).flat().join(', ') || 'none'}`,
      severity: 'error',
      from: { path: room(name) },
      to: { path: forbidden.map(room) },
    });
  }
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import cycle: two modules that need each other are one idea, or one of them is in the wrong room.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-unknown-room',
      comment: 'Every module of src/ lives in a room of RANKS (add a new folder there, at its place in the flow).',
      severity: 'error',
      from: { path: '^src/', pathNot: RANKS.flat().map(room) },
      to: {},
    },
    ...rules,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|build|node_modules)/' },
  },
};
