// {{name}}: a bluegreen pre-deploy plugin in JavaScript. Blocks the deploy
// while the setting `frozen` is `true`. Export another hook's object
// (`healthCheck`, `postDeploy`, ...) and change the world in ./build to
// handle another hook; see bluegreen's book, docs/src/plugins/index.md.

export const preDeploy = {
  handle(deploy) {
    const frozen = deploy.settings.some(([k, v]) => k === "frozen" && v === "true");
    const verdict = frozen ? { tag: "block", val: "deploys are frozen" } : { tag: "proceed" };
    return { verdict, findings: [] };
  },
};
