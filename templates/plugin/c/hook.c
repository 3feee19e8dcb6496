// {{name}}: a bluegreen pre-deploy plugin in C. Blocks the deploy while the
// setting `frozen` is `true`. Generate another world's bindings in ./build
// to handle another hook; see bluegreen's book, docs/src/plugins/index.md.

#include <string.h>

#include "pre_deploy_plugin.h"

static int is(pre_deploy_plugin_string_t s, const char *text) {
  return s.len == strlen(text) && memcmp(s.ptr, text, s.len) == 0;
}

bool exports_bluegreen_hooks_pre_deploy_handle(exports_bluegreen_hooks_pre_deploy_deploy_t *d,
                                               exports_bluegreen_hooks_pre_deploy_outcome_t *out,
                                               pre_deploy_plugin_string_t *err) {
  (void)err;
  memset(out, 0, sizeof(*out));
  out->verdict.tag = BLUEGREEN_HOOKS_TYPES_VERDICT_PROCEED;
  for (size_t i = 0; i < d->settings.len; i++) {
    if (is(d->settings.ptr[i].f0, "frozen") && is(d->settings.ptr[i].f1, "true")) {
      out->verdict.tag = BLUEGREEN_HOOKS_TYPES_VERDICT_BLOCK;
      pre_deploy_plugin_string_dup(&out->verdict.val.block, "deploys are frozen");
    }
  }
  exports_bluegreen_hooks_pre_deploy_deploy_free(d);
  return true;
}
