// release-gate: a bluegreen pre-deploy plugin in C. It blocks releases that
// are not a git commit (bluegreen names uncommitted work `content-<hash>`),
// unless the setting `allow-uncommitted` is `true`, and, with the setting
// `prefix`, releases whose id does not start with it (`v` for tags).
//
// Bindings: `wit-bindgen c` for the `pre-deploy-plugin` world (see build).

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pre_deploy_plugin.h"

// Looks up a setting; returns false when it is not set.
static bool setting(const bluegreen_hooks_types_deploy_t *d, const char *key,
                    pre_deploy_plugin_string_t *out) {
  size_t key_len = strlen(key);
  for (size_t i = 0; i < d->settings.len; i++) {
    pre_deploy_plugin_tuple2_string_string_t *kv = &d->settings.ptr[i];
    if (kv->f0.len == key_len && memcmp(kv->f0.ptr, key, key_len) == 0) {
      *out = kv->f1;
      return true;
    }
  }
  return false;
}

static bool equals(pre_deploy_plugin_string_t s, const char *text) {
  return s.len == strlen(text) && memcmp(s.ptr, text, s.len) == 0;
}

static bool starts_with(pre_deploy_plugin_string_t s, const uint8_t *prefix, size_t len) {
  return s.len >= len && memcmp(s.ptr, prefix, len) == 0;
}

// Sets `out` to a block with a reason the host takes ownership of.
static void block(exports_bluegreen_hooks_pre_deploy_outcome_t *out, const char *reason) {
  out->verdict.tag = BLUEGREEN_HOOKS_TYPES_VERDICT_BLOCK;
  pre_deploy_plugin_string_dup(&out->verdict.val.block, reason);
}

bool exports_bluegreen_hooks_pre_deploy_handle(exports_bluegreen_hooks_pre_deploy_deploy_t *d,
                                               exports_bluegreen_hooks_pre_deploy_outcome_t *out,
                                               pre_deploy_plugin_string_t *err) {
  (void)err;
  memset(out, 0, sizeof(*out));
  out->verdict.tag = BLUEGREEN_HOOKS_TYPES_VERDICT_PROCEED;

  pre_deploy_plugin_string_t value;
  bool allow_uncommitted = setting(d, "allow-uncommitted", &value) && equals(value, "true");
  const char *content = "content-";
  if (!allow_uncommitted && starts_with(d->release, (const uint8_t *)content, strlen(content))) {
    char reason[256];
    snprintf(reason, sizeof reason,
             "release %.*s is uncommitted work, not a git commit: commit it (or set allow-uncommitted)",
             (int)d->release.len, (const char *)d->release.ptr);
    block(out, reason);
  } else if (setting(d, "prefix", &value) && !starts_with(d->release, value.ptr, value.len)) {
    char reason[256];
    snprintf(reason, sizeof reason, "release %.*s does not start with `%.*s`",
             (int)d->release.len, (const char *)d->release.ptr, (int)value.len, (const char *)value.ptr);
    block(out, reason);
  }
  exports_bluegreen_hooks_pre_deploy_deploy_free(d);
  return true;
}
