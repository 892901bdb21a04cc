/*
 * tern-heapwalk — where malloc's free memory sits, and what pins it.
 *
 *   LD_PRELOAD=build/tests/libtern-heapwalk.so HEAPWALK_OUT=/tmp/hw \
 *       HEAPWALK_PERIOD=300 build/tern bench --seconds 1500 ...
 *   python3 tests/tools/tern_heapwalk.py /tmp/hw.3 [main|arena0]
 *
 * A development tool for soaks (not linked into tern, not run by ctest).
 * It interposes malloc, free and operator new/delete, and keeps every live
 * allocation's call site: the caller's address, or, for sizes in
 * HEAPWALK_MIN..HEAPWALK_MAX bytes, a backtrace and the thread's name.
 * Every HEAPWALK_PERIOD seconds (default 300) a thread of its own writes
 * HEAPWALK_OUT.N: per site, allocations, frees, live bytes and how long
 * the freed ones lived; then it walks the chunks of malloc's main arena
 * ([heap]) and of each other arena's heaps, and for every free chunk of
 * 1 KiB or more names the sites of the chunks on either side: those are
 * what keeps the free memory from merging and going back. It also keeps,
 * per site, the live bytes in the other arenas (the background threads'),
 * their peak, and each site's share at the last high-water mark of them
 * all (tern_heapwalk.py DUMP others). That is how the
 * stop 20 soak found interned item ids and catalog entries pinning both
 * arenas (README, "Soak memory: what pins malloc's free memory").
 *
 * The walk reads glibc's chunk headers while other threads allocate: it
 * checks each size before following it and stops at the first that does
 * not fit. It knows glibc 2.36's layouts on x86-64 (Debian 12): heap_info
 * 48 bytes, malloc_state 2200 bytes, top at offset 96, 64 MiB heaps. The
 * bookkeeping (a table of 2^23 allocations, mmapped) adds ~200 MiB of
 * RSS and a lock to every malloc: compare a soak with it only to
 * another soak with it.
 */
#include <dlfcn.h>
#include <execinfo.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

#define HW_DEPTH   10
#define HW_SITES   65536
#define HW_MAP_CAP (1u << 23)
#define HW_LIFE_BUCKETS                                                        \
        7 /* <10 ms, <0.1 s, <1 s, <10 s, <100 s, <1000 s, more */
#define HW_NO_SITE UINT32_MAX

/* glibc 2.36, x86-64 */
#define HW_HEAP_MAX    (64ul << 20)
#define HW_HEAP_INFO   48
#define HW_MSTATE      2200
#define HW_MSTATE_TOP  96
#define HW_NON_MAIN    4 /* NON_MAIN_ARENA bit of a chunk's size */
#define HW_PREV_IN_USE 1
#define HW_MMAPPED     2

typedef struct {
        void *frames[HW_DEPTH];
        int n_frames;
        char thread[16]; /* "*": any thread (caller-only sites) */
        uint64_t allocs, frees, live_n, live_bytes, alloc_bytes;
        uint64_t main_allocs; /* from the main arena */
        /* live bytes in the other arenas: now, at most, and at the last
         * high-water mark of all sites together (hw_other_snap) */
        uint64_t other_live, other_peak, other_at_peak;
        uint64_t life[HW_LIFE_BUCKETS];
} hw_site_t;

typedef struct {
        uintptr_t ptr; /* 0: empty */
        uint32_t site, size;
        uint64_t t_ns;
} hw_slot_t;

/* Free chunks of 1 KiB+ by the sites below and above them. */
#define HW_PINS 4096
typedef struct {
        uint32_t below, above;
        uint64_t n, bytes;
} hw_pin_t;

#define HW_BANDS 10
static const size_t hw_band_limit[HW_BANDS] = {
    64, 256, 1024, 2048, 5120, 16384, 65536, 262144, 1048576, SIZE_MAX};

typedef struct {
        uint64_t free_bytes[HW_BANDS], free_n[HW_BANDS];
        uint64_t used, used_tracked, chunks, free_total;
} hw_walk_t;

static hw_site_t *hw_sites;
static hw_slot_t *hw_map;
static hw_pin_t hw_pins[HW_PINS];
static pthread_mutex_t hw_lock = PTHREAD_MUTEX_INITIALIZER;
/* Tracked live bytes in the other arenas, and the total at the last
 * snapshot of every site's share (taken each time it passes the last one
 * by HW_SNAP_STEP): what the background threads hold at their peaks,
 * which a dump every few minutes would catch only by chance. */
#define HW_SNAP_STEP (1u << 20)
#define HW_OTHER     0x80000000u /* in hw_slot_t.size: an other arena's */
static uint64_t hw_other_live, hw_other_snap;
static size_t hw_band_min = 1, hw_band_max = 0; /* backtraced sizes */
static int hw_ready;
/* set while the hook itself allocates (backtrace, the dumper) */
static __thread int hw_busy __attribute__((tls_model("initial-exec")));

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t slot_home(uintptr_t p) {
        return (size_t)((p >> 4) * 0x9E3779B97F4A7C15ull) & (HW_MAP_CAP - 1);
}

static size_t slot_find(uintptr_t p) {
        size_t i = slot_home(p);
        while (hw_map[i].ptr && hw_map[i].ptr != p)
                i = (i + 1) & (HW_MAP_CAP - 1);
        return i;
}

/* thread: 16 bytes, NUL-padded */
static uint32_t site_of(void *const *frames, int n, const char *thread) {
        uint64_t h = 1469598103934665603ull;
        for (int i = 0; i < n; i++)
                h = (h ^ (uintptr_t)frames[i]) * 1099511628211ull;
        for (const char *c = thread; *c; c++)
                h = (h ^ (uint8_t)*c) * 1099511628211ull;
        for (size_t k = 0, i = h & (HW_SITES - 1); k < HW_SITES;
             k++, i = (i + 1) & (HW_SITES - 1)) {
                hw_site_t *s = &hw_sites[i];
                if (!s->n_frames) {
                        memcpy(s->frames, frames, (size_t)n * sizeof(void *));
                        s->n_frames = n;
                        memcpy(s->thread, thread, sizeof(s->thread));
                        return (uint32_t)i;
                }
                if (s->n_frames == n &&
                    !memcmp(s->frames, frames, (size_t)n * sizeof(void *)) &&
                    !strncmp(s->thread, thread, sizeof(s->thread)))
                        return (uint32_t)i;
        }
        return 0; /* full: lumped into slot 0 */
}

static void other_snapshot(void) {
        for (size_t k = 0; k < HW_SITES; k++)
                hw_sites[k].other_at_peak = hw_sites[k].other_live;
        hw_other_snap = hw_other_live;
}

static void remember(void *p, size_t n, uint32_t site) {
        hw_site_t *s = &hw_sites[site];
        size_t i = slot_find((uintptr_t)p);
        size_t head = ((size_t *)p)[-1];
        uint32_t other =
            (head & HW_NON_MAIN) && !(head & HW_MMAPPED) && n < HW_OTHER
                ? HW_OTHER
                : 0;
        s->allocs++;
        s->live_n++;
        s->live_bytes += n;
        s->alloc_bytes += n;
        s->main_allocs += !(head & HW_NON_MAIN);
        if (other) {
                s->other_live += n;
                if (s->other_live > s->other_peak)
                        s->other_peak = s->other_live;
                hw_other_live += n;
                if (hw_other_live >= hw_other_snap + HW_SNAP_STEP)
                        other_snapshot();
        }
        hw_map[i] =
            (hw_slot_t){(uintptr_t)p, site, (uint32_t)n | other, now_ns()};
}

static void note_alloc(void *p, size_t n, void *caller) {
        void *frames[HW_DEPTH + 2];
        char thread[16] = "*";
        int k;
        if (!p || !hw_ready || hw_busy)
                return;
        if (n < hw_band_min || n > hw_band_max) {
                pthread_mutex_lock(&hw_lock);
                remember(p, n, site_of(&caller, 1, thread));
                pthread_mutex_unlock(&hw_lock);
                return;
        }
        hw_busy = 1;
        k = backtrace(frames, HW_DEPTH + 2) - 2; /* less this and malloc */
        prctl(PR_GET_NAME, thread);
        thread[15] = '\0';
        pthread_mutex_lock(&hw_lock);
        remember(p, n, site_of(frames + 2, k < 1 ? 1 : k, thread));
        pthread_mutex_unlock(&hw_lock);
        hw_busy = 0;
}

/* Removes slot i, moving later entries of its probe run back into the
 * hole when their home allows it. */
static void slot_delete(size_t i) {
        for (size_t j = (i + 1) & (HW_MAP_CAP - 1); hw_map[j].ptr;
             j = (j + 1) & (HW_MAP_CAP - 1)) {
                size_t home = slot_home(hw_map[j].ptr);
                if (((j - home) & (HW_MAP_CAP - 1)) >=
                    ((j - i) & (HW_MAP_CAP - 1))) {
                        hw_map[i] = hw_map[j];
                        i = j;
                }
        }
        hw_map[i].ptr = 0;
}

static void note_free(void *p) {
        size_t i;
        if (!p || !hw_ready)
                return;
        pthread_mutex_lock(&hw_lock);
        i = slot_find((uintptr_t)p);
        if (hw_map[i].ptr) {
                hw_site_t *s = &hw_sites[hw_map[i].site];
                uint64_t life = now_ns() - hw_map[i].t_ns;
                int b = 0;
                for (uint64_t lim = 10000000ull;
                     b < HW_LIFE_BUCKETS - 1 && life >= lim; lim *= 10)
                        b++;
                uint32_t size = hw_map[i].size & ~HW_OTHER;
                s->frees++;
                s->live_n--;
                s->live_bytes -= size;
                if (hw_map[i].size & HW_OTHER) {
                        s->other_live -= size;
                        hw_other_live -= size;
                }
                s->life[b]++;
                slot_delete(i);
        }
        pthread_mutex_unlock(&hw_lock);
}

#define CALLER __builtin_return_address(0)

void *malloc(size_t n) {
        void *p = __libc_malloc(n);
        note_alloc(p, n, CALLER);
        return p;
}

void free(void *p) {
        note_free(p);
        __libc_free(p);
}

void *calloc(size_t count, size_t size) {
        void *p = __libc_calloc(count, size);
        note_alloc(p, count * size, CALLER);
        return p;
}

void *realloc(void *p, size_t n) {
        void *q;
        note_free(p);
        q = __libc_realloc(p, n);
        note_alloc(q, n, CALLER);
        return q;
}

int posix_memalign(void **out, size_t align, size_t n) {
        void *p = __libc_memalign(align, n);
        if (!p)
                return 12; /* ENOMEM */
        note_alloc(p, n, CALLER);
        *out = p;
        return 0;
}

void *aligned_alloc(size_t align, size_t n) {
        void *p = __libc_memalign(align, n);
        note_alloc(p, n, CALLER);
        return p;
}

void *memalign(size_t align, size_t n) {
        void *p = __libc_memalign(align, n);
        note_alloc(p, n, CALLER);
        return p;
}

/* operator new/delete (the Itanium names): RocksDB's caller, not
 * libstdc++'s operator new, becomes the site. */
void *_Znwm(size_t n);
void *_Znam(size_t n);
void _ZdlPv(void *p);
void _ZdaPv(void *p);
void _ZdlPvm(void *p, size_t n);
void _ZdaPvm(void *p, size_t n);

void *_Znwm(size_t n) {
        void *p = __libc_malloc(n);
        note_alloc(p, n, CALLER);
        return p;
}

void *_Znam(size_t n) {
        void *p = __libc_malloc(n);
        note_alloc(p, n, CALLER);
        return p;
}

void _ZdlPv(void *p) {
        free(p);
}
void _ZdaPv(void *p) {
        free(p);
}
void _ZdlPvm(void *p, size_t n) {
        (void)n;
        free(p);
}
void _ZdaPvm(void *p, size_t n) {
        (void)n;
        free(p);
}

static void pin_add(uint32_t below, uint32_t above, size_t bytes) {
        size_t h = ((below * 2654435761u) ^ above) & (HW_PINS - 1);
        for (int k = 0; k < HW_PINS; k++, h = (h + 1) & (HW_PINS - 1))
                if (!hw_pins[h].n ||
                    (hw_pins[h].below == below && hw_pins[h].above == above)) {
                        hw_pins[h].below = below;
                        hw_pins[h].above = above;
                        hw_pins[h].n++;
                        hw_pins[h].bytes += bytes;
                        return;
                }
}

/* Walks the chunks from p up to end (the top chunk, or the heap's end);
 * returns where it stopped. */
static uintptr_t walk_chunks(uintptr_t p, uintptr_t end, hw_walk_t *w) {
        uint32_t below = HW_NO_SITE;
        size_t pending = 0; /* a free chunk waiting for its upper side */
        while (p + 16 < end) {
                size_t size = ((size_t *)p)[1] & ~(size_t)7;
                uintptr_t next = p + size;
                if (size < 32 || size % 16 || next > end || next + 16 > end)
                        break;
                w->chunks++;
                if (((size_t *)next)[1] & HW_PREV_IN_USE) {
                        size_t i = slot_find(p + 16);
                        uint32_t site = HW_NO_SITE;
                        w->used += size;
                        if (hw_map[i].ptr) {
                                site = hw_map[i].site;
                                w->used_tracked += size;
                        }
                        if (pending)
                                pin_add(below, site, pending);
                        pending = 0;
                        below = site;
                } else {
                        int b = 0;
                        while (size >= hw_band_limit[b])
                                b++;
                        w->free_bytes[b] += size;
                        w->free_n[b]++;
                        w->free_total += size;
                        if (size >= 1024)
                                pending = size;
                }
                p = next;
        }
        return p;
}

static void walk_print(FILE *f, const char *name, uintptr_t start,
                       uintptr_t end, uintptr_t reached, const hw_walk_t *w) {
        fprintf(f,
                "heapwalk %s %lu MiB, %lu chunks, in use %lu (tracked %lu), "
                "free %lu, walked to %lu of %lu KiB\n",
                name, (unsigned long)((end - start) >> 20),
                (unsigned long)w->chunks, (unsigned long)w->used,
                (unsigned long)w->used_tracked, (unsigned long)w->free_total,
                (unsigned long)((reached - start) >> 10),
                (unsigned long)((end - start) >> 10));
        for (int b = 0; b < HW_BANDS; b++)
                fprintf(f, "%s free band <%zu: %lu chunks %lu bytes\n", name,
                        hw_band_limit[b], (unsigned long)w->free_n[b],
                        (unsigned long)w->free_bytes[b]);
        for (int k = 0; k < HW_PINS; k++)
                if (hw_pins[k].n)
                        fprintf(f, "pin %s below %d above %d n %lu bytes %lu\n",
                                name, (int)hw_pins[k].below,
                                (int)hw_pins[k].above,
                                (unsigned long)hw_pins[k].n,
                                (unsigned long)hw_pins[k].bytes);
}

/* An anonymous rw mapping starting on a 64 MiB boundary: a heap of a
 * non-main arena (its first, which holds the arena, or a later one). */
static void walk_arena_heap(FILE *f, uintptr_t h, uintptr_t map_end, int nr) {
        uintptr_t arena = *(uintptr_t *)h, size = ((size_t *)h)[2];
        uintptr_t first, top, stop, reached;
        hw_walk_t w = {0};
        char name[32];
        if (size < 4096 || size > map_end - h)
                return;
        if (arena == h + HW_HEAP_INFO)
                first = (h + HW_HEAP_INFO + HW_MSTATE + 15) & ~(uintptr_t)15;
        else
                first = h + HW_HEAP_INFO;
        top = *(uintptr_t *)(arena + HW_MSTATE_TOP);
        stop = top > h && top < h + size ? top + 32 : h + size;
        snprintf(name, sizeof(name), "arena%d", nr);
        memset(hw_pins, 0, sizeof(hw_pins));
        reached = walk_chunks(first, stop, &w);
        walk_print(f, name, h, h + size, reached, &w);
}

static void heap_walk(FILE *f) {
        uintptr_t heaps[64], heap_ends[64], main_start = 0, main_end = 0;
        int n_heaps = 0;
        char line[512];
        FILE *maps = fopen("/proc/self/maps", "r");
        while (maps && fgets(line, sizeof(line), maps)) {
                unsigned long a, b, off, inode;
                char perms[8], dev[16];
                int tail = 0;
                if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %n", &a, &b, perms,
                           &off, dev, &inode, &tail) < 6)
                        continue;
                if (strstr(line, "[heap]")) {
                        main_start = a;
                        main_end = b;
                } else if (a % HW_HEAP_MAX == 0 && !strcmp(perms, "rw-p") &&
                           inode == 0 && !line[tail] && n_heaps < 64) {
                        heaps[n_heaps] = a;
                        heap_ends[n_heaps++] = b;
                }
        }
        if (maps)
                fclose(maps);
        pthread_mutex_lock(&hw_lock);
        if (main_start) {
                hw_walk_t w = {0};
                uintptr_t reached;
                memset(hw_pins, 0, sizeof(hw_pins));
                reached = walk_chunks(main_start, (uintptr_t)sbrk(0), &w);
                walk_print(f, "main", main_start, main_end, reached, &w);
        }
        for (int i = 0; i < n_heaps; i++)
                walk_arena_heap(f, heaps[i], heap_ends[i], i);
        pthread_mutex_unlock(&hw_lock);
}

static void site_print(FILE *f, int i, const hw_site_t *s) {
        fprintf(f,
                "site %d thread %s main %lu allocs %lu frees %lu live_n %lu "
                "live_bytes %lu alloc_bytes %lu other_live %lu other_peak %lu "
                "other_at_peak %lu hist",
                i, s->thread, (unsigned long)s->main_allocs,
                (unsigned long)s->allocs, (unsigned long)s->frees,
                (unsigned long)s->live_n, (unsigned long)s->live_bytes,
                (unsigned long)s->alloc_bytes, (unsigned long)s->other_live,
                (unsigned long)s->other_peak, (unsigned long)s->other_at_peak);
        for (int b = 0; b < HW_LIFE_BUCKETS; b++)
                fprintf(f, " %lu", (unsigned long)s->life[b]);
        fputc('\n', f);
        for (int k = 0; k < s->n_frames; k++) {
                Dl_info di;
                uintptr_t a = (uintptr_t)s->frames[k];
                if (dladdr(s->frames[k], &di) && di.dli_fname)
                        fprintf(
                            f, "  %s+0x%lx %s+0x%lx\n", di.dli_fname,
                            (unsigned long)(a - (uintptr_t)di.dli_fbase),
                            di.dli_sname ? di.dli_sname : "?",
                            (unsigned long)(di.dli_saddr
                                                ? a - (uintptr_t)di.dli_saddr
                                                : 0));
                else
                        fprintf(f, "  %p\n", s->frames[k]);
        }
}

static void dump(const char *out, int seq) {
        size_t bytes = HW_SITES * sizeof(hw_site_t);
        char path[512];
        FILE *f;
        struct mallinfo2 mi;
        uint64_t other_now, other_snap;
        hw_site_t *copy = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (copy == MAP_FAILED)
                return;
        pthread_mutex_lock(&hw_lock);
        memcpy(copy, hw_sites, bytes);
        other_now = hw_other_live;
        other_snap = hw_other_snap;
        pthread_mutex_unlock(&hw_lock);
        snprintf(path, sizeof(path), "%s.%d", out, seq);
        if (!(f = fopen(path, "w")))
                goto out;
        for (int i = 0; i < HW_SITES; i++)
                if (copy[i].n_frames)
                        site_print(f, i, &copy[i]);
        fprintf(f, "others tracked live %lu at_peak %lu\n",
                (unsigned long)other_now, (unsigned long)other_snap);
        heap_walk(f);
        mi = mallinfo2();
        fprintf(f, "mallinfo arena %zu hblkhd %zu uordblks %zu fordblks %zu\n",
                mi.arena, mi.hblkhd, mi.uordblks, mi.fordblks);
        fclose(f);
out:
        munmap(copy, bytes);
}

static void *dumper(void *arg) {
        const char *period = getenv("HEAPWALK_PERIOD");
        const char *out = arg;
        unsigned seconds = period ? (unsigned)atoi(period) : 300;
        hw_busy = 1;
        for (int seq = 1;; seq++) {
                sleep(seconds ? seconds : 300);
                dump(out, seq);
        }
        return NULL;
}

__attribute__((constructor)) static void heapwalk_init(void) {
        const char *e;
        void *frames[4];
        pthread_t thread;
        if ((e = getenv("HEAPWALK_MIN")))
                hw_band_min = strtoul(e, NULL, 10);
        if ((e = getenv("HEAPWALK_MAX")))
                hw_band_max = strtoul(e, NULL, 10);
        hw_sites =
            mmap(NULL, HW_SITES * sizeof(hw_site_t), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        hw_map =
            mmap(NULL, HW_MAP_CAP * sizeof(hw_slot_t), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (hw_sites == MAP_FAILED || hw_map == MAP_FAILED)
                return;
        hw_busy = 1;
        backtrace(frames, 4); /* loads libgcc_s now, not inside a malloc */
        hw_busy = 0;
        /* Only the process that names an output dumps (a broker started
         * alongside with the same environment stays quiet). */
        if ((e = getenv("HEAPWALK_OUT")) &&
            !pthread_create(&thread, NULL, dumper, (void *)e))
                pthread_detach(thread);
        hw_ready = 1;
}
