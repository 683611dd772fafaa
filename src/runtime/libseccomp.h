/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * libseccomp's <seccomp.h>. Sources in src/runtime/ cannot name it
 * directly: meson puts their own directory first on the include path, where
 * runtime/seccomp.h shadows it. Found through -I src, #include_next goes on
 * past this directory to the system's header.
 */

#include_next <seccomp.h>
