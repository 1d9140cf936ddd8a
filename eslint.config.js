// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Layers point down only (DESIGN.md, "Layers"): each entry lists what a layer may not import. */
const layer = (files, forbidden, message) => ({
  files,
  rules: {
    'no-restricted-imports': ['error', { patterns: [{ group: forbidden, message }] }],
  },
});

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
    [
      '**/engine/**',
      '**/kube/**',
      '**/controller/**',
      '**/audit/**',
      '**/metrics/**',
      '**/cli/**',
      '@kubernetes/*',
      'node:*',
    ],
    'src/api holds types and defaults only.',
  ),
  layer(
    ['src/engine/**'],
    [
      '**/kube/**',
      '**/controller/**',
      '**/audit/**',
      '**/metrics/**',
      '**/cli/**',
      '@kubernetes/*',
      'node:*',
      'winston',
      'prom-client',
    ],
    'src/engine is pure: it may import src/api only, and no I/O.',
  ),
  layer(
    ['src/metrics/**'],
    ['**/engine/**', '**/kube/**', '**/controller/**', '**/audit/**', '**/cli/**', '**/api/**'],
    'src/metrics uses nothing of ours.',
  ),
  layer(
    ['src/kube/**'],
    ['**/engine/**', '**/controller/**', '**/audit/**', '**/metrics/**', '**/cli/**'],
    'src/kube wraps @kubernetes/client-node only.',
  ),
  layer(
    ['src/controller/**', 'src/audit/**'],
    ['**/cli/**', '@kubernetes/*'],
    'The controller and audit talk to the API through src/kube.',
  ),
);
