//go:build linux

package fake

import "os"

// Generation selects which generation of the kernel's LUO ABI a fake
// kernel models.
type Generation int

const (
	// Newest is the newest kernel (torvalds b2128290/637315cb): GET_NAME,
	// direction checks, name validation, sticky retrieve errors, limits
	// only from the serialization blocks (ENOSPC).
	Newest Generation = iota
	// FirstMerged is the first merged LUO (the 6.19 era): no GET_NAME (it
	// answers EINVAL), no direction check, no name validation on create,
	// no caching of failed retrieves, at most 128 files per session
	// (ENOSPC) and 819 sessions (ENOMEM).
	FirstMerged
)

// String returns "newest" or "first-merged".
func (g Generation) String() string {
	if g == FirstMerged {
		return "first-merged"
	}
	return "newest"
}

// Limits of the kernel: KHO_MAX_BLOCKS blocks of 51 session entries, or of
// 63 file entries; the first merged kernel's fixed arrays.
const (
	NewestMaxSessions      = 10000 * 51
	NewestMaxFiles         = 10000 * 63
	FirstMergedMaxSessions = 819
	FirstMergedMaxFiles    = 128
)

type config struct {
	gen         Generation
	maxSessions int // 0: the generation's
	maxFiles    int
	seedGetName bool
	memfdV2     bool
	handlers    []Handler
	imageFile   string
}

func defaultConfig() config { return config{} }

func (c *config) sessionLimit() int {
	if c.maxSessions > 0 {
		return c.maxSessions
	}
	if c.gen == FirstMerged {
		return FirstMergedMaxSessions
	}
	return NewestMaxSessions
}

func (c *config) fileLimit() int {
	if c.maxFiles > 0 {
		return c.maxFiles
	}
	if c.gen == FirstMerged {
		return FirstMergedMaxFiles
	}
	return NewestMaxFiles
}

// Option configures a fake kernel.
type Option func(*config)

// WithGeneration makes the fake behave as that generation of the kernel.
func WithGeneration(g Generation) Option { return func(c *config) { c.gen = g } }

// WithMaxSessions lowers the number of outgoing sessions the kernel holds,
// so tests reach the limit quickly. Past it, create fails as the modelled
// generation's would: ENOSPC (newest) or ENOMEM (first merged).
func WithMaxSessions(n int) Option { return func(c *config) { c.maxSessions = n } }

// WithMaxFiles lowers the number of files a session holds; past it,
// preserve fails with ENOSPC.
func WithMaxFiles(n int) Option { return func(c *config) { c.maxFiles = n } }

// WithSeedGetName models kernels whose ops table describes GET_NAME with the
// retrieve_fd struct (min_size 16; bytes 16..71 of a 72-byte request must be
// zero): see liveupdate.GetNameMinSizeSeed.
func WithSeedGetName() Option { return func(c *config) { c.seedGetName = true } }

// WithMemfdV2 preserves memfds as memfd-v2 (linux-mm): seals are kept, and
// any fd of a preserved memfd counts as the same file (EBUSY). The default
// is memfd-v1, as in torvalds/linux: seals are not kept, and only fds of
// the same open file (dups, fds passed over sockets) count as the same.
func WithMemfdV2() Option { return func(c *config) { c.memfdV2 = true } }

// WithHandler registers a file handler after the built-in memfd handler:
// files the memfd handler does not take are offered to the handlers in
// registration order. A kernel booted from an image needs handlers of the
// same compatible strings as the kernel that wrote it.
func WithHandler(h Handler) Option { return func(c *config) { c.handlers = append(c.handlers, h) } }

// ImageEnv is the environment variable FromEnv reads.
const ImageEnv = "LUO_FAKE_IMAGE"

// WithImageFile names a file that carries the live update between
// processes: New boots from it when it exists (the second stage), and
// Kexec writes the image to it (the first stage). Run both stages with the
// same option; remove the file to boot fresh.
func WithImageFile(path string) Option { return func(c *config) { c.imageFile = path } }

// FromEnv is WithImageFile of the path in the LUO_FAKE_IMAGE environment
// variable, when it is set.
func FromEnv() Option {
	return func(c *config) {
		if p := os.Getenv(ImageEnv); p != "" {
			c.imageFile = p
		}
	}
}
