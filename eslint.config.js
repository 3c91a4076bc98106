import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// ---------------------------------------------------------------------------------------------
// Layering: which directory may import which. One `@typescript-eslint/no-restricted-imports`
// setting per set of files. In a flat config the last matching entry replaces a rule's options
// instead of merging them, so the sets below are disjoint (`ignores`) and each lists every
// pattern that applies to it. Import paths are matched as written (relative, `.js` suffix).
// ---------------------------------------------------------------------------------------------
const LEAF_SERVICES = ['accounts', 'portfolios', 'users', 'market-data', 'clock', 'events', 'classes', 'history'];
const leafDirs = LEAF_SERVICES.map((name) => `src/services/${name}/**`);
const leafRoutes = LEAF_SERVICES.map((name) => `src/services/${name}/**/*.routes.ts`);
const ROUTES = 'src/services/**/*.routes.ts';

const CORE_ONLY = {
  regex: '^(?!\\./)',
  message: 'src/core is pure domain logic: it imports only its own modules (./x.js), never another layer, an npm package or a Node built-in.',
};
const CORE_TEST_ONLY = {
  regex: '^(?!\\./|vitest$|fast-check$)',
  message: 'tests in src/core import only core modules (./x.js), vitest and fast-check.',
};
const NO_ORCHESTRATORS = {
  regex: '^(\\.\\./)+(services/)?(orders|trading|resets)(/|$)',
  message: 'leaf services (accounts, portfolios, users, market-data, classes, history) never depend on the orchestrators (orders, trading, resets): those call them, not the other way round.',
};
const NO_HTTP = {
  regex: '^(\\.\\./)+http(/|$)',
  message: 'services know nothing of HTTP: only the route files (*.routes.ts), the HTTP edge of each service, import src/http.',
};
const NO_APP = {
  regex: '^(\\.\\./)+app(\\.js|\\.ts)?$',
  message: 'src/app.ts wires everything together: services and infra never import it (route files may import its AppContext type, with import type).',
};
const APP_TYPE_ONLY = {
  ...NO_APP,
  allowTypeImports: true,
  message: 'route files take the AppContext type from src/app.ts and nothing else: use import type.',
};
const NO_UPPER_LAYERS = {
  regex: '^(\\.\\./)+(services|http|cli)(/|$)',
  message: 'src/infra is the bottom layer (with core): it never imports services, http or cli.',
};
const layer = (files, ignores, ...patterns) => ({
  files,
  ...(ignores.length ? { ignores } : {}),
  rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns }] },
});

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
  layer(['src/core/**/*.ts'], ['src/core/**/*.test.ts'], CORE_ONLY),
  layer(['src/core/**/*.test.ts'], [], CORE_TEST_ONLY),
  layer(['src/infra/**/*.ts'], [], NO_UPPER_LAYERS, NO_APP),
  layer(['src/services/**/*.ts'], [ROUTES, ...leafDirs], NO_HTTP, NO_APP),
  layer([ROUTES], leafRoutes, APP_TYPE_ONLY),
  layer(leafDirs, leafRoutes, NO_ORCHESTRATORS, NO_HTTP, NO_APP),
  layer(leafRoutes, [], NO_ORCHESTRATORS, APP_TYPE_ONLY),
  // The dashboard runs in a browser: its own modules, the pure core (money, order terms: the
  // same rules as the server) and its one chart library; never the server's services or infra.
  {
    files: ['web/**/*.ts'],
    languageOptions: {
      globals: {
        window: 'readonly', document: 'readonly', location: 'readonly', sessionStorage: 'readonly', WebSocket: 'readonly', fetch: 'readonly',
        AbortSignal: 'readonly', DOMException: 'readonly', URLSearchParams: 'readonly', Intl: 'readonly', crypto: 'readonly',
        requestAnimationFrame: 'readonly', Blob: 'readonly', FileReader: 'readonly', navigator: 'readonly', ResizeObserver: 'readonly', matchMedia: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!\\./|\\.\\./(?!\\.\\./)|\\.\\./\\.\\./src/core/|\\.\\./\\.\\./\\.\\./src/core/|lightweight-charts$|vite$|node:url$)',
              message: 'the dashboard (web/) imports its own modules, src/core and lightweight-charts only: it talks to the server through the public API.',
            },
          ],
        },
      ],
    },
  },
  // The Alpaca facade is an HTTP edge like the route files: it may import src/http and the
  // services, and src/app.ts for its AppContext type only.
  layer(['src/alpaca/**/*.ts'], [], APP_TYPE_ONLY),
);
