package dongle

import "testing"

func FuzzParseUevent(f *testing.F) {
	f.Add([]byte(proUevent))
	f.Add([]byte("DRIVER=hid-generic\nHID_ID=0003:0000316D:00004C4B\nHID_NAME=Purism Librem Key\n"))
	f.Add([]byte("HID_ID=0003:000020A0:000042B2\nHID_NAME=Nitrokey Nitrokey 3\n"))
	f.Add([]byte("HID_ID=0005:0000046D:0000B012\nHID_NAME=MX Master\n")) // Bluetooth
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		u, err := ParseUevent(untrusted)
		if err != nil {
			return
		}
		if len(u.Name) > len(untrusted) {
			t.Fatal("name longer than the input")
		}
	})
}
