package fake

// A fake kernel's users reach it through package liveupdate, which needs
// the fake's wire client installed: linking package fake installs it.
import _ "github.com/go-luo/luo/liveupdate/fakeclient"
