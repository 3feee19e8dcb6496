"""{{name}}: a bluegreen pre-deploy plugin in Python. Blocks the deploy while
the setting `frozen` is `true`. Change the world in ./build and the class
below (`HealthCheck`, `PostDeploy`, ...) to handle another hook; see the
book's Plugins chapter (docs/src/plugins/index.md)."""

from wit_world import exports
from wit_world.imports import types


class PreDeploy(exports.PreDeploy):
    def handle(self, d: types.Deploy) -> types.Outcome:
        if ("frozen", "true") in d.settings:
            verdict = types.Verdict_Block("deploys are frozen")
        else:
            verdict = types.Verdict_Proceed()
        return types.Outcome(verdict=verdict, findings=[])
