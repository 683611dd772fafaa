/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* Generated container names (names.h). The word lists are moat's own:
 * adjectives of weather and light, nouns of castles and their waters. */

#include "engine/names.h"

#include <stdio.h>
#include <sys/random.h>

static const char *const adjectives[] = {
        "amber",   "ancient", "bold",    "brave",   "bright",  "calm",    "clever",  "cold",    "crisp",
        "dappled", "distant", "dry",     "eager",   "early",   "fierce",  "gentle",  "gilded",  "golden",
        "grey",    "hidden",  "hollow",  "humble",  "icy",     "keen",    "late",    "lively",  "lone",
        "loyal",   "mellow",  "misty",   "nimble",  "noble",   "patient", "plain",   "proud",   "quiet",
        "rapid",   "restless","rugged",  "rusty",   "shaded",  "sharp",   "silent",  "silver",  "sleepy",
        "slow",    "smooth",  "snowy",   "solemn",  "spry",    "stark",   "steady",  "stern",   "still",
        "stoic",   "stormy",  "sturdy",  "sunny",   "swift",   "tall",    "tidy",    "tranquil","vast",
        "vivid",   "wandering","warm",   "wary",    "watchful","wild",    "windy",   "wise",    "young",
};

static const char *const nouns[] = {
        "bailey",  "barbican","bastion", "battlement","bridge", "buttress","causeway","citadel", "cove",
        "crenel",  "dam",     "ditch",   "drawbridge","dungeon","estuary", "fjord",   "ford",    "fortress",
        "garrison","gate",    "gatehouse","harbour","haven",   "inlet",   "keep",    "lagoon",  "lake",
        "lock",    "loophole","marsh",   "merlon",  "mill",    "moat",    "motte",   "parapet", "pier",
        "pond",    "portcullis","postern","quay",   "rampart", "ravelin", "redoubt", "reservoir","river",
        "sluice",  "spillway","spring",  "stockade","stream",  "tarn",    "tower",   "turret",  "wall",
        "ward",    "weir",    "well",    "wharf",
};

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

int moat_engine_random_name(unsigned retry, char **ret)
{
        uint32_t rnd[3];

        if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
                return -errno;
        const char *a = adjectives[rnd[0] % N_ELEMENTS(adjectives)];
        const char *n = nouns[rnd[1] % N_ELEMENTS(nouns)];
        int r = retry > 0 ? asprintf(ret, "%s_%s%u", a, n, rnd[2] % 10) : asprintf(ret, "%s_%s", a, n);
        return r < 0 ? -ENOMEM : 0;
}
