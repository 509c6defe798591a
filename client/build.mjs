// Build the browser client into dist/ (served by run.py at /client/): one bundled
// script, no CDN, nothing fetched at run time.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist");
await build({
  entryPoints: ["src/app.js"],
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  sourcemap: true,
  legalComments: "external",
  outfile: "dist/app.js",
  // Not Daily: its media manager loads code from the internet (src/no-daily.js).
  alias: { "@daily-co/daily-js": "./src/no-daily.js" },
  logLevel: "warning",
});
for (const file of ["index.html", "style.css"]) copyFileSync(`src/${file}`, `dist/${file}`);
console.log("client built into client/dist");
