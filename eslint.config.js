import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', URL: 'readonly', Buffer: 'readonly', fetch: 'readonly', Headers: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Money must stay exact: these never touch amounts, prices or quantities.
      'no-restricted-globals': ['error', { name: 'parseFloat', message: 'money is bigint fixed-point (core/money.ts)' }],
      'no-restricted-properties': ['error', { property: 'toFixed', message: 'money is bigint fixed-point (core/money.ts)' }],
    },
  },
  {
    // Benchmarks and tests format measurements (rates, milliseconds), never money.
    files: ['src/bench/**', 'test/**', 'scripts/**'],
    rules: { 'no-restricted-properties': 'off' },
  },
);
