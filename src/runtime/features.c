/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The runtime-spec features document (features.md): what this build
 * really implements, so managers can decide before they ask. Every entry
 * here has code behind it; what is not implemented yet is reported as
 * disabled or left out.
 */

#include <sys/capability.h>

#include <jansson.h>

#include "oci/runtime-spec.h"
#include "runtime/mount.h"
#include "runtime/protect.h"
#include "runtime/runtime.h"
#include "runtime/seccomp.h"

int moat_features_json(char **ret_json, struct moat_error **reterr)
{
        json_t *hooks = json_array();
        for (int k = 0; k < OCI_HOOK__MAX; k++)
                json_array_append_new(hooks, json_string(oci_hook_kind_to_string((enum oci_hook_kind) k)));

        json_t *mount_options = json_array();
        for (const char *const *o = moat_mount_known_options(); *o; o++)
                json_array_append_new(mount_options, json_string(*o));

        json_t *namespaces = json_array();
        for (int t = 0; t < OCI_NS__MAX; t++)
                json_array_append_new(namespaces,
                                      json_string(oci_namespace_type_to_string((enum oci_namespace_type) t)));

        json_t *caps = json_array();
        for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
                char *name = cap_to_name((cap_value_t) cap);
                if (!name)
                        continue;
                char upper[64];
                size_t i = 0;
                for (; name[i] && i < sizeof(upper) - 1; i++)
                        upper[i] = (char) (name[i] >= 'a' && name[i] <= 'z' ? name[i] - 'a' + 'A' : name[i]);
                upper[i] = '\0';
                cap_free(name);
                if (startswith(upper, "CAP_"))
                        json_array_append_new(caps, json_string(upper));
        }

        json_t *seccomp = NULL;
        if (moat_seccomp_features(&seccomp) < 0)
                return moat_error_set(reterr, ENOMEM, "building the features document");

        json_t *doc = json_pack(
                "{s:s, s:s, s:o, s:o, s:{s:o, s:o, s:{s:b, s:b, s:b, s:b, s:b}, s:o, s:{s:b}, s:{s:b},"
                " s:{s:b}, s:{s:{s:b}}}}",
                "ociVersionMin", "1.0.0", "ociVersionMax", MOAT_OCI_VERSION, "hooks", hooks, "mountOptions",
                mount_options, "linux", "namespaces", namespaces, "capabilities", caps, "cgroup", "v1", 1, "v2", 1,
                "systemd", 0, "systemdUser", 0, "rdma", 0, "seccomp", seccomp, "apparmor", "enabled",
                moat_lsm_is_active(MOAT_LSM_APPARMOR, -EBADF), "selinux", "enabled",
                moat_lsm_is_active(MOAT_LSM_SELINUX, -EBADF), "intelRdt", "enabled", 0, "mountExtensions", "idmap", "enabled", 1);
        if (!doc)
                return moat_error_set(reterr, ENOMEM, "building the features document");
        *ret_json = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(doc);
        return *ret_json ? 0 : moat_error_set(reterr, ENOMEM, "encoding the features document");
}
