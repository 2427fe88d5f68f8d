package fake

import "os"

type config struct {
	gen         Generation
	b           behaviour // gen's, set by New
	maxSessions int       // 0: the generation's
	maxFiles    int
	handlers    []Handler
	imageFile   string
}

func defaultConfig() config { return config{gen: DefaultGeneration} }

func (c *config) sessionLimit() int {
	if c.maxSessions > 0 {
		return c.maxSessions
	}
	return c.b.maxSessions
}

func (c *config) fileLimit() int {
	if c.maxFiles > 0 {
		return c.maxFiles
	}
	return c.b.maxFiles
}

// Option configures a fake kernel.
type Option func(*config)

// WithGeneration makes the fake behave as the kernel release g models
// (DefaultGeneration without it). New fails on a value that is not one of
// the Generation constants.
func WithGeneration(g Generation) Option { return func(c *config) { c.gen = g } }

// WithMaxSessions lowers the number of outgoing sessions the kernel holds,
// so tests reach the limit quickly. Past it, create fails as the modelled
// generation's does at its own limit: ENOSPC (Linux 7.2, whose block set
// cannot grow) or ENOMEM (Linux 6.19), before the name is looked at.
func WithMaxSessions(n int) Option { return func(c *config) { c.maxSessions = n } }

// WithMaxFiles lowers the number of files a session holds; past it,
// preserve fails with ENOSPC.
func WithMaxFiles(n int) Option { return func(c *config) { c.maxFiles = n } }

// WithHandler registers a file handler after the built-in memfd handler:
// files the memfd handler does not take are offered to the handlers in
// registration order. A kernel booted from an image needs handlers of the
// same compatible strings as the kernel that wrote it.
func WithHandler(h Handler) Option { return func(c *config) { c.handlers = append(c.handlers, h) } }

// ImageEnv is the environment variable FromEnv reads.
const ImageEnv = "LUO_FAKE_IMAGE"

// WithImageFile names a file that carries the live update between
// processes: New boots from it when it exists and is not empty (the
// second stage), and Kexec writes the image to it (the first stage). A
// missing or empty file holds no image yet: New boots fresh, so a file
// from os.CreateTemp will do. Run both stages with the same option; remove
// or empty the file to boot fresh.
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
