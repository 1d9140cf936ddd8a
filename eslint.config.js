// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Layers point down only (docs/architecture.md, "Layers"): each entry lists what a layer may not import. */
const layer = (files, forbidden, message) => ({
  files,
  rules: {
    'no-restricted-imports': ['error', { patterns: [{ group: forbidden, message }] }],
  },
});

/** The layers above the engine. */
const ABOVE_ENGINE = [
  '**/kube/**',
  '**/controller/**',
  '**/audit/**',
  '**/metrics/**',
  '**/cli/**',
];
/** What a pure layer may not import from outside: the API client, Node's modules and I/O libraries. */
const IO = ['@kubernetes/*', 'node:*', 'winston', 'prom-client'];

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'node_modules/',
      'coverage/',
      'charts/',
      '.tmp/',
      '**/*.cjs',
      'eslint.config.js',
      'bin/',
    ],
  },
  eslint.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // winston declares its transports as interfaces over classes; this rule misreads them.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  layer(
    ['src/api/**'],
    ['**/engine/**', ...ABOVE_ENGINE, '@kubernetes/*', 'node:*'],
    'src/api holds types and defaults only.',
  ),
  layer(
    ['src/engine/**'],
    [...ABOVE_ENGINE, ...IO],
    'src/engine is pure: it may import src/api and src/util only, and no I/O.',
  ),
  layer(
    ['src/util/**'],
    ['**/api/**', '**/engine/**', ...ABOVE_ENGINE, ...IO],
    'src/util holds generic helpers: it imports nothing of ours, and nothing else.',
  ),
  layer(
    ['src/metrics/**'],
    ['**/engine/**', '**/kube/**', '**/controller/**', '**/audit/**', '**/cli/**'],
    'src/metrics uses nothing of ours but src/util and src/api (the rule names of its labels).',
  ),
  layer(
    ['src/kube/**'],
    ['**/engine/**', '**/controller/**', '**/audit/**', '**/metrics/**', '**/cli/**'],
    'src/kube wraps @kubernetes/client-node; of ours it uses src/api and src/util only.',
  ),
  layer(
    ['src/controller/**', 'src/audit/**'],
    ['**/cli/**', '@kubernetes/*'],
    'The controller and audit talk to the API through src/kube.',
  ),
);
