package server

import (
	"bytes"
	"context"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/attest"
	"github.com/glint-boot/glint/internal/attest/store"
	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/tpm"
)

//go:embed templates/*.html static/*
var webFiles embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"ago":     ago,
	"short":   func(b []byte) string { return shortHex(hex.EncodeToString(b)) },
	"hexs":    func(b []byte) string { return hex.EncodeToString(b) },
	"when":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"bank":    bankName,
	"verdict": verdictClass,
}).ParseFS(webFiles, "templates/*.html"))

func (s *Server) webRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /login", s.handleLogin)
	mux.HandleFunc("POST /login", s.handleLogin)
	mux.Handle("GET /static/", http.FileServerFS(webFiles))
	mux.HandleFunc("POST /logout", s.admin(s.handleLogout))
	mux.HandleFunc("GET /{$}", s.admin(s.pageFleet))
	mux.HandleFunc("GET /devices/{id}", s.admin(s.pageDevice))
	mux.HandleFunc("POST /devices/{id}/status", s.admin(s.postStatus))
	mux.HandleFunc("POST /devices/{id}/learn", s.admin(s.postLearn))
	mux.HandleFunc("GET /reports/{id}", s.admin(s.pageReport))
	mux.HandleFunc("GET /reports/{id}/log", s.admin(s.getLog))
	mux.HandleFunc("GET /enrollments", s.admin(s.pageEnrollments))
	mux.HandleFunc("POST /preregister", s.admin(s.postPreregister))
	mux.HandleFunc("GET /golden", s.admin(s.pageGolden))
	mux.HandleFunc("POST /golden/import", s.admin(s.postGoldenImport))
	mux.HandleFunc("POST /golden/{id}/delete", s.admin(s.postGoldenDelete))
	mux.HandleFunc("GET /audit", s.admin(s.pageAudit))
}

// render executes a page inside the layout.
func (s *Server) render(w http.ResponseWriter, r *http.Request, page string, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	if sess := sessionFrom(r.Context()); sess != nil {
		data["Admin"] = sess.admin.Name
		data["CSRF"] = s.csrfToken(sess)
	}
	data["Page"] = page
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, page+".html", data); err != nil {
		s.log.Printf("attest: render %s: %v", page, err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	s.log.Printf("attest: dashboard: %v", err)
	http.Error(w, "internal error; the server log has the details", http.StatusInternalServerError)
}

func (s *Server) fleetStats(r *http.Request) (*store.Stats, error) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if s.statsCache != nil && time.Since(s.statsAt) < 15*time.Second {
		return s.statsCache, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st, err := s.store.Stats(ctx, s.now().Add(-s.cfg.StaleAfter))
	if err != nil {
		return nil, err
	}
	s.statsCache, s.statsAt = st, time.Now()
	return st, nil
}

// deviceView is a device row as the pages show it.
type deviceView struct {
	store.Device
	IDHex string
	Stale bool
}

func (s *Server) view(d store.Device) deviceView {
	v := deviceView{Device: d, IDHex: hex.EncodeToString(d.DeviceID)}
	v.Stale = d.Status == store.StatusApproved && (d.LastAttestedAt.IsZero() || s.now().Sub(d.LastAttestedAt) > s.cfg.StaleAfter)
	return v
}

func (s *Server) pageFleet(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	filter := r.URL.Query().Get("show")
	var devs []store.Device
	var err error
	switch filter {
	case "stale":
		devs, err = s.store.StaleDevices(ctx, s.now().Add(-s.cfg.StaleAfter), 1000)
	case store.StatusPending, store.StatusApproved, store.StatusRevoked, store.StatusRejected:
		devs, err = s.store.Devices(ctx, filter, 1000)
	default:
		filter = ""
		devs, err = s.store.Devices(ctx, "", 1000)
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	st, err := s.store.Stats(ctx, s.now().Add(-s.cfg.StaleAfter))
	if err != nil {
		s.fail(w, err)
		return
	}
	views := make([]deviceView, len(devs))
	for i, d := range devs {
		views[i] = s.view(d)
	}
	// Problems first: changed, then stale, then the rest.
	sort.SliceStable(views, func(i, j int) bool { return rank(views[i]) < rank(views[j]) })
	s.render(w, r, "fleet", map[string]any{"Devices": views, "Stats": st, "Filter": filter, "StaleAfter": s.cfg.StaleAfter})
}

func rank(v deviceView) int {
	switch {
	case v.Status == store.StatusApproved && v.LastVerdict == "changed":
		return 0
	case v.Stale:
		return 1
	case v.Status == store.StatusPending:
		return 2
	case v.Status == store.StatusApproved && v.LastVerdict != "trusted":
		return 3
	}
	return 4
}

func (s *Server) deviceParam(r *http.Request) (*store.Device, error) {
	id, err := hex.DecodeString(r.PathValue("id"))
	if err != nil || len(id) != 32 {
		return nil, store.ErrNotFound
	}
	return s.store.DeviceByID(r.Context(), id)
}

func (s *Server) pageDevice(w http.ResponseWriter, r *http.Request) {
	d, err := s.deviceParam(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	hist, err := s.store.Reports(r.Context(), d.Row, 100)
	if err != nil {
		s.fail(w, err)
		return
	}
	data := map[string]any{"D": s.view(*d), "History": hist, "TPM": tpm.Version(d.TPMVersion).String()}
	ek := &tpm.EK{Version: tpm.Version(d.TPMVersion), Public: d.EKPublic, Certificate: d.EKCertificate}
	if c, err := ek.ParseCertificate(); err == nil {
		data["CertIssuer"] = c.Issuer.String()
		data["CertSerial"] = c.SerialNumber.String()
	}
	if pre, err := s.store.IsPreregistered(r.Context(), d.EKFingerprint); err == nil {
		data["Preregistered"] = pre
	}
	if len(hist) > 0 {
		data["LatestLabel"] = hist[0].Firmware
	}
	s.render(w, r, "device", data)
}

func (s *Server) postStatus(w http.ResponseWriter, r *http.Request) {
	d, err := s.deviceParam(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	status := r.PostFormValue("status")
	if err := s.store.SetStatus(r.Context(), d.Row, status, sessionFrom(r.Context()).admin.Name, s.now()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.fail(w, err)
			return
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.log.Printf("attest: %s set device %x (%s) %s", sessionFrom(r.Context()).admin.Name, d.DeviceID[:8], d.Hostname, status)
	http.Redirect(w, r, "/devices/"+r.PathValue("id"), http.StatusSeeOther)
}

// postLearn approves the device's latest report as the golden measurements
// of its model: the administrator vouches that this reference machine runs
// what the organization means to run.
func (s *Server) postLearn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d, err := s.deviceParam(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	hist, err := s.store.Reports(ctx, d.Row, 1)
	if err != nil || len(hist) == 0 {
		http.Error(w, "this device has not reported yet; nothing to learn", http.StatusBadRequest)
		return
	}
	rep := hist[0]
	label := strings.TrimSpace(r.PostFormValue("label"))
	if label == "" {
		label = rep.Firmware
	}
	if label == "" || len(label) > 255 {
		http.Error(w, "name the firmware image (1-255 characters)", http.StatusBadRequest)
		return
	}
	g, err := s.goldenFromReport(ctx, d, &rep, label, sessionFrom(ctx).admin.Name)
	if err != nil {
		s.fail(w, err)
		return
	}
	id, err := s.store.AddGolden(ctx, g, sessionFrom(ctx).admin.Name, s.now())
	if err != nil {
		s.fail(w, err)
		return
	}
	s.goldens.invalidate()
	http.Redirect(w, r, "/golden#g"+strconv.FormatInt(id, 10), http.StatusSeeOther)
}

// goldenFromReport makes a golden set of a stored report: its quoted PCRs
// 0-7 and the events of its log in the quoted bank.
func (s *Server) goldenFromReport(ctx context.Context, d *store.Device, rep *store.Report, label, by string) (*attest.Golden, error) {
	pcrs, err := store.DecodePCRs(rep.PCRs)
	if err != nil {
		return nil, err
	}
	keep := map[int][]byte{}
	for _, p := range attest.QuotedPCRs {
		keep[p] = pcrs[p]
	}
	g := &attest.Golden{Model: d.Model, Label: label, Bank: tpm.Alg(rep.Bank), PCRs: keep,
		Source: fmt.Sprintf("learned from %s (device %x), report %d, by %s", d.Hostname, d.DeviceID[:8], rep.ID, by)}
	if raw, err := s.store.EventLog(ctx, rep.LogSHA256); err == nil {
		if l, err := eventlog.Parse(raw); err == nil {
			g.Events = l.Records(g.Bank)
		}
	}
	return g, nil
}

type reportView struct {
	store.Report
	Diff    differences
	PCRList []pcrRow
	Golden  *attest.Golden
	Device  deviceView
	Checks  string
}

type pcrRow struct {
	Index          int
	Quoted, Golden string
	Differs        bool
	Unexplained    bool
}

func (s *Server) pageReport(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.fail(w, store.ErrNotFound)
		return
	}
	rep, err := s.store.ReportByID(ctx, id)
	if err != nil {
		s.fail(w, err)
		return
	}
	d, err := s.store.DeviceByRow(ctx, rep.Device)
	if err != nil {
		s.fail(w, err)
		return
	}
	v := reportView{Report: *rep, Device: s.view(*d)}
	json.Unmarshal([]byte(rep.Differences), &v.Diff)
	if rep.GoldenID != 0 {
		if gs, err := s.store.Goldens(ctx, d.Model); err == nil {
			for i := range gs {
				if gs[i].ID == rep.GoldenID {
					v.Golden = &gs[i]
				}
			}
		}
	}
	pcrs, _ := store.DecodePCRs(rep.PCRs)
	unexplained := map[int]bool{}
	for _, p := range v.Diff.Unexplained {
		unexplained[p] = true
	}
	var idx []int
	for p := range pcrs {
		idx = append(idx, p)
	}
	sort.Ints(idx)
	for _, p := range idx {
		row := pcrRow{Index: p, Quoted: hex.EncodeToString(pcrs[p]), Unexplained: unexplained[p]}
		if v.Golden != nil {
			if g, ok := v.Golden.PCRs[p]; ok {
				row.Golden = hex.EncodeToString(g)
				row.Differs = row.Golden != row.Quoted
			}
		}
		v.PCRList = append(v.PCRList, row)
	}
	if rep.HostChecks != "" {
		var out bytes.Buffer
		if json.Indent(&out, []byte(rep.HostChecks), "", "  ") == nil {
			v.Checks = out.String()
		}
	}
	s.render(w, r, "report", map[string]any{"R": v})
}

func (s *Server) getLog(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.fail(w, store.ErrNotFound)
		return
	}
	rep, err := s.store.ReportByID(r.Context(), id)
	if err != nil {
		s.fail(w, err)
		return
	}
	raw, err := s.store.EventLog(r.Context(), rep.LogSHA256)
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"eventlog-%d.bin\"", id))
	w.Write(raw)
}

func (s *Server) pageEnrollments(w http.ResponseWriter, r *http.Request) {
	devs, err := s.store.Devices(r.Context(), store.StatusPending, 1000)
	if err != nil {
		s.fail(w, err)
		return
	}
	views := make([]deviceView, len(devs))
	for i, d := range devs {
		views[i] = s.view(d)
	}
	st, err := s.store.Stats(r.Context(), s.now().Add(-s.cfg.StaleAfter))
	if err != nil {
		s.fail(w, err)
		return
	}
	s.render(w, r, "enrollments", map[string]any{"Devices": views, "Preregistered": st.Preregged,
		"AutoEK": len(s.cfg.EKRoots) > 0, "AutoPre": s.cfg.ApprovePreregistered})
}

func (s *Server) postPreregister(w http.ResponseWriter, r *http.Request) {
	added := 0
	for _, line := range strings.Split(r.PostFormValue("fingerprints"), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		fp := strings.ToLower(f[0])
		if b, err := hex.DecodeString(fp); err != nil || len(b) != 32 {
			http.Error(w, fmt.Sprintf("%q is not an EK fingerprint (64 hex digits, from glint attest ek)", f[0]), http.StatusBadRequest)
			return
		}
		if err := s.store.Preregister(r.Context(), fp, strings.Join(f[1:], " "), sessionFrom(r.Context()).admin.Name, s.now()); err != nil {
			s.fail(w, err)
			return
		}
		added++
	}
	http.Redirect(w, r, "/enrollments?added="+strconv.Itoa(added), http.StatusSeeOther)
}

type goldenView struct {
	attest.Golden
	PCRList []pcrRow
}

func (s *Server) pageGolden(w http.ResponseWriter, r *http.Request) {
	gs, err := s.store.Goldens(r.Context(), "")
	if err != nil {
		s.fail(w, err)
		return
	}
	views := make([]goldenView, len(gs))
	for i, g := range gs {
		views[i].Golden = g
		var idx []int
		for p := range g.PCRs {
			idx = append(idx, p)
		}
		sort.Ints(idx)
		for _, p := range idx {
			views[i].PCRList = append(views[i].PCRList, pcrRow{Index: p, Golden: hex.EncodeToString(g.PCRs[p])})
		}
	}
	s.render(w, r, "golden", map[string]any{"Goldens": views})
}

// GoldenFile is the import format for golden sets predicted offline (glint
// rom predict writes it) or exported from another server.
type GoldenFile struct {
	Model  string                 `json:"model"`
	Label  string                 `json:"label"`
	Bank   string                 `json:"bank"` // sha1, sha256
	PCRs   map[string]string      `json:"pcrs"` // index -> hex
	Events []eventlog.EventRecord `json:"events,omitempty"`
	Source string                 `json:"source,omitempty"`
}

// predictFile is what glint rom predict --json writes: the PCRs an image
// will produce, predicted offline (no machine needed).
type predictFile struct {
	Image string `json:"image"`
	TPM   string `json:"tpm"`
	PCRs  []struct {
		Index  int    `json:"index"`
		SHA1   string `json:"sha1"`
		SHA256 string `json:"sha256"`
		Source string `json:"source"`
	} `json:"pcrs"`
	Events []eventlog.EventRecord `json:"events"`
}

// ParseGoldenFile checks an import file (an upload): either a GoldenFile,
// or glint rom predict --json output, for which model and label name the
// set (the prediction knows the image, not the machine model).
func ParseGoldenFile(untrusted []byte, model, label string) (*attest.Golden, error) {
	if len(untrusted) > maxFormBody {
		return nil, fmt.Errorf("golden file: %d bytes, limit %d", len(untrusted), maxFormBody)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(untrusted, &probe); err != nil {
		return nil, fmt.Errorf("golden file: %w", err)
	}
	if _, isPrediction := probe["image"]; isPrediction {
		return parsePrediction(untrusted, model, label)
	}
	var f GoldenFile
	dec := json.NewDecoder(bytes.NewReader(untrusted))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("golden file: %w", err)
	}
	if model != "" {
		f.Model = model
	}
	if label != "" {
		f.Label = label
	}
	return goldenFrom(f)
}

func parsePrediction(untrusted []byte, model, label string) (*attest.Golden, error) {
	var p predictFile
	if err := json.Unmarshal(untrusted, &p); err != nil {
		return nil, fmt.Errorf("prediction: %w", err)
	}
	if model == "" {
		return nil, errors.New("a prediction (glint rom predict --json) says nothing about the machine: give the model it is for")
	}
	if label == "" {
		label = p.Image
	}
	bank, all256 := "sha256", len(p.PCRs) > 0
	for _, v := range p.PCRs {
		all256 = all256 && v.SHA256 != ""
	}
	if !all256 {
		bank = "sha1"
	}
	f := GoldenFile{Model: model, Label: label, Bank: bank, PCRs: map[string]string{}, Source: "predicted from " + p.Image + " (glint rom predict)"}
	for _, v := range p.PCRs {
		val := v.SHA256
		if bank == "sha1" {
			val = v.SHA1
		}
		f.PCRs[strconv.Itoa(v.Index)] = val
	}
	want, _ := tpm.ParseAlg(bank)
	for _, e := range p.Events {
		if e.Alg == want {
			f.Events = append(f.Events, e)
		}
	}
	return goldenFrom(f)
}

func goldenFrom(f GoldenFile) (*attest.Golden, error) {
	if f.Model == "" || f.Label == "" || len(f.Model) > 255 || len(f.Label) > 255 {
		return nil, errors.New("golden file: model and label are required (1-255 characters)")
	}
	bank, err := tpm.ParseAlg(f.Bank)
	if err != nil || (bank != tpm.SHA1 && bank != tpm.SHA256) {
		return nil, fmt.Errorf("golden file: bank %q, want sha1 or sha256", f.Bank)
	}
	g := &attest.Golden{Model: f.Model, Label: f.Label, Bank: bank, PCRs: map[int][]byte{}, Source: f.Source}
	for k, v := range f.PCRs {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i > 23 {
			return nil, fmt.Errorf("golden file: PCR %q out of range 0-23", k)
		}
		b, err := hex.DecodeString(v)
		if err != nil || len(b) != bank.Size() {
			return nil, fmt.Errorf("golden file: PCR %d is not a %s value", i, f.Bank)
		}
		g.PCRs[i] = b
	}
	if len(g.PCRs) == 0 {
		return nil, errors.New("golden file: no PCR values")
	}
	if f.Events != nil {
		enc, _ := json.Marshal(f.Events)
		var err error
		if g.Events, err = eventlog.ParseRecords(enc); err != nil {
			return nil, fmt.Errorf("golden file: %w", err)
		}
	}
	if g.Source == "" {
		g.Source = "imported"
	}
	return g, nil
}

func (s *Server) postGoldenImport(w http.ResponseWriter, r *http.Request) {
	f, _, err := r.FormFile("file")
	if err != nil {
		http.Error(w, "choose a golden-set file to import", http.StatusBadRequest)
		return
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxFormBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	g, err := ParseGoldenFile(raw, strings.TrimSpace(r.PostFormValue("model")), strings.TrimSpace(r.PostFormValue("label")))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	g.Source += " (imported by " + sessionFrom(r.Context()).admin.Name + ")"
	id, err := s.store.AddGolden(r.Context(), g, sessionFrom(r.Context()).admin.Name, s.now())
	if err != nil {
		s.fail(w, err)
		return
	}
	s.goldens.invalidate()
	http.Redirect(w, r, "/golden#g"+strconv.FormatInt(id, 10), http.StatusSeeOther)
}

func (s *Server) postGoldenDelete(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.fail(w, store.ErrNotFound)
		return
	}
	if err := s.store.DeleteGolden(r.Context(), id, sessionFrom(r.Context()).admin.Name, s.now()); err != nil {
		s.fail(w, err)
		return
	}
	s.goldens.invalidate()
	http.Redirect(w, r, "/golden", http.StatusSeeOther)
}

func (s *Server) pageAudit(w http.ResponseWriter, r *http.Request) {
	entries, err := s.store.Audit(r.Context(), 500)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.render(w, r, "audit", map[string]any{"Entries": entries})
}

// bankName names a bank given as a tpm.Alg or a stored integer.
func bankName(b any) string {
	switch v := b.(type) {
	case tpm.Alg:
		return v.String()
	case int:
		return tpm.Alg(v).String()
	}
	return fmt.Sprint(b)
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

func shortHex(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

func verdictClass(v string) string {
	switch v {
	case "trusted":
		return "ok"
	case "changed":
		return "bad"
	case "":
		return "none"
	}
	return "warn"
}
