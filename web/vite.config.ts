import { defineConfig } from 'vitest/config';

// The same static build is served by the gateway (embedded/local profiles) and from S3 behind
// CloudFront (aws profile): relative asset paths (base './'), no server-side rendering.
export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: true,
    target: 'es2022',
    chunkSizeWarningLimit: 400,
  },
  // Local development: `npm run dev` proxies the API to a venue on :8000.
  server: {
    proxy: {
      '/v1': { target: 'http://127.0.0.1:8000', ws: true },
    },
  },
  test: {
    include: ['tests/unit/**/*.test.ts'],
    environment: 'node',
  },
});
