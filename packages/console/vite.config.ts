// Vite builds the console into dist/ (index.html + hashed files under assets/), which server-kit
// serves at / on the suite's port. No inline scripts or styles: the server's CSP forbids them.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    assetsDir: "assets",
    // No module-preload polyfill: it is an inline script, and every browser we serve has
    // modulepreload.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 3000,
    sourcemap: false,
  },
  worker: { format: "es" },
});
