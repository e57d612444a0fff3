/**
 * Where the API is. Empty means the page's own origin (the gateway serving this build).
 *
 * The same build is served from S3 behind CloudFront in the aws profile, where the API can
 * live elsewhere: set it at deploy time in index.html's
 * `<meta name="rialto-api-base" content="https://api.example.com">`, or at build time with
 * `VITE_RIALTO_API_BASE`. (No query-string override: a link must not be able to send a
 * user's password to another server.)
 */
export function apiBase(): string {
  const meta = typeof document !== 'undefined'
    ? document.querySelector('meta[name="rialto-api-base"]')?.getAttribute('content')
    : null;
  const built = import.meta.env.VITE_RIALTO_API_BASE as string | undefined;
  return (meta || built || '').trim().replace(/\/+$/, '');
}

export function wsUrl(base: string = apiBase()): string {
  if (base) return base.replace(/^http(s?):/i, 'ws$1:') + '/v1/ws';
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/v1/ws`;
}
