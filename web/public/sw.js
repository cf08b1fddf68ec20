// CityWok's service worker: keeps the page's shell (the page and its hashed assets, the
// icons) so the page opens without a network. It never stores or answers anything of the
// API (/api/), the docs, share pages or previews: answers always come from the server.

const CACHE = "citywok-shell-v1";
const SHELL = ["/", "/manifest.webmanifest", "/favicon.svg", "/icons/icon-192.png", "/icons/icon-512.png"];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

function isShell(url) {
  if (url.origin !== self.location.origin) return false;
  if (/^\/(api|docs|r|openapi\.json|metrics|healthz|readyz)(\/|$)/.test(url.pathname)) return false;
  return url.pathname === "/" || url.pathname.startsWith("/assets/") || url.pathname.startsWith("/icons/") ||
    ["/manifest.webmanifest", "/favicon.svg"].includes(url.pathname);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (!isShell(url)) return; // the network alone, as if there were no worker
  if (url.pathname.startsWith("/assets/")) {
    // Hashed names never change: the cache first, the network to fill it.
    event.respondWith(
      caches.match(request).then(
        (hit) =>
          hit ||
          fetch(request).then((response) => {
            if (response.ok) {
              const copy = response.clone();
              caches.open(CACHE).then((cache) => cache.put(request, copy));
            }
            return response;
          }),
      ),
    );
    return;
  }
  // The page itself: the network first (a new version shows at once), the cache offline.
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(url.pathname === "/" ? "/" : request, copy));
        }
        return response;
      })
      .catch(() => caches.match(url.pathname === "/" ? "/" : request).then((hit) => hit || Response.error())),
  );
});
