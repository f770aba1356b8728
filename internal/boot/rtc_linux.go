package boot

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// setRTC writes the hardware clock (in UTC) so the next boot starts right.
func setRTC(t time.Time) error {
	f, err := os.OpenFile("/dev/rtc0", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	t = t.UTC()
	rt := &unix.RTCTime{
		Sec: int32(t.Second()), Min: int32(t.Minute()), Hour: int32(t.Hour()),
		Mday: int32(t.Day()), Mon: int32(t.Month()) - 1, Year: int32(t.Year() - 1900),
	}
	return unix.IoctlSetRTCTime(int(f.Fd()), rt)
}
