// Command cardsim runs glint's simulated OpenPGP card (internal/card/cardsim)
// as a process, for the emulated laptop and for trying glint and gpg by hand:
//
//	cardsim --state card.json --vscard /tmp/card.sock
//	    listens on a unix socket for QEMU: -device qemu-xhci,id=xhci
//	    -device usb-ccid,id=ccid,bus=xhci.0 -chardev socket,id=card,path=/tmp/card.sock
//	    -device ccid-card-passthru,chardev=card,bus=ccid.0
//	cardsim --state card.json --vpcd 127.0.0.1:35963
//	    connects to pcscd's vpcd reader (Debian's vsmartcard-vpcd; its
//	    /etc/reader.conf.d/vpcd listens on 35963): gpg --card-status and
//	    glint card status then see the card
//
// The state file keeps keys, PINs and counters across runs (created with the
// factory PINs 123456 / 12345678). It is a test card: its keys are plain
// files, never use it for real secrets.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/glint-boot/glint/internal/card/cardsim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "cardsim: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	state := flag.String("state", "", "state file (default: in memory only)")
	vscard := flag.String("vscard", "", "unix socket to listen on for QEMU's ccid-card-passthru")
	vpcd := flag.String("vpcd", "", "pcscd vpcd reader to connect to, HOST:PORT")
	serial := flag.Uint("serial", 0x42, "card serial number")
	spec2 := flag.Bool("spec2", false, "behave as an OpenPGP card 2.1 (RSA only)")
	verbose := flag.Bool("v", false, "log every APDU's instruction and status (never data)")
	flag.Parse()
	if (*vscard == "") == (*vpcd == "") {
		return errors.New("give exactly one of --vscard SOCKET or --vpcd HOST:PORT")
	}
	opts := cardsim.Options{Path: *state, Serial: uint32(*serial), Spec2: *spec2}
	if *verbose {
		opts.Log = log.Printf
	}
	if *vscard != "" {
		opts.ATR = cardsim.ATRT0() // QEMU's reader offers T=0 only
	}
	c, err := cardsim.New(opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *vpcd != "" {
		log.Printf("cardsim: serving card %08X to vpcd at %s", *serial, *vpcd)
		err := c.ServeVPCD(ctx, *vpcd)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	os.Remove(*vscard)
	l, err := net.Listen("unix", *vscard)
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, func() { l.Close() })
	log.Printf("cardsim: card %08X waiting for QEMU on %s", *serial, *vscard)
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		log.Printf("cardsim: QEMU connected; card inserted")
		if err := c.ServeVSCard(conn); err != nil {
			log.Printf("cardsim: %v", err)
		}
		conn.Close()
		c.PowerOff()
		log.Printf("cardsim: QEMU disconnected; waiting again")
	}
}
