#!/usr/bin/env node
// Entry point of the `papertrade` command; the compiled CLI lives in dist/ (npm run build).
process.env.PAPERTRADE_CLI = '1';
await import('../dist/cli/main.js');
