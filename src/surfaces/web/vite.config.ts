import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

// The web debugger: a static single-page app built into dist/web, which
// `rewind serve` serves at `/` (see static-dir.ts). Everything is local: no CDN, no web fonts.
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** API paths the dev server forwards to a running `rewind serve` (REWIND_API, default http://127.0.0.1:4600). */
const API = ['/runs', '/reactions', '/streams', '/events', '/verify', '/health', '/metrics', '/openapi.json'];

export default defineConfig({
  root: here('./app'),
  // Relative asset URLs: the build works wherever it is mounted.
  base: './',
  plugins: [preact({ devToolsEnabled: false, prefreshEnabled: false })],
  publicDir: false,
  build: {
    outDir: here('../../../dist/web'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 200,
  },
  server: {
    host: '127.0.0.1',
    proxy: Object.fromEntries(API.map((p) => [p, { target: process.env.REWIND_API ?? 'http://127.0.0.1:4600', changeOrigin: false }])),
  },
});
