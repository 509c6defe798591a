// Stands in for @daily-co/daily-js in the bundle. The SmallWebRTC transport imports
// Daily for its default media manager, which downloads Daily's call-object bundle
// from the internet; this page uses its own (LocalMediaManager in app.js).
export default new Proxy(
  {},
  {
    get() {
      throw new Error("Daily is not bundled in this client (offline page)");
    },
  },
);
