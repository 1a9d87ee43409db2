//! `sound2scene serve` on loopback (crates/sound2scene-serve): the API draws what `generate`
//! draws, refuses bad input with a 4xx and goes on serving, sends a live picture every hop over
//! its WebSocket, and under 64 concurrent clients answers every request with 200 or 503, none
//! hanging, in bounded memory.
//!
//! The server is the real binary on a free port; the HTTP client is a few lines of HTTP/1.1
//! over a `TcpStream`, so that malformed requests can be sent as they are, and the WebSocket
//! client is tungstenite's.

#![cfg(feature = "serve")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{WavSamples, wav_bytes};

/// A running `sound2scene serve`, killed when dropped.
struct Served {
    child: Child,
    addr: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn sound(name: &str) -> PathBuf {
    repo().join("assets/sounds").join(name)
}

/// Start the server on a free loopback port with `extra` flags and wait for its address.
fn serve(extra: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sound2scene"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(extra)
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server prints its address before anything fails")
            .expect("utf-8");
        if let Some(url) = line.strip_prefix("listening on http://") {
            break url.trim().to_string();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Served { child, addr }
}

/// An answer: status and body.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(200)])
            )
        })
    }

    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .expect("an error message")
            .to_string()
    }
}

/// Send one request (`Connection: close`) and read the whole answer, within `timeout`.
fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    // The server may answer (413, 503) before reading a large body and close.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok(Answer {
        status,
        content_type,
        body,
    })
}

/// The body of a chunked answer.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&raw[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        body.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 2 + size + 2..];
    }
    body
}

/// One part of a form: its name, its file name (for a file) and its bytes.
type Part<'a> = (&'a str, Option<&'a str>, &'a [u8]);

/// A multipart/form-data body of `parts`.
fn multipart(parts: &[Part<'_>]) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let boundary = "sound2scene-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(file) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let headers = vec![(
        "Content-Type",
        format!("multipart/form-data; boundary={boundary}"),
    )];
    (headers, body)
}

fn post(addr: &str, path: &str, parts: &[Part<'_>]) -> Answer {
    let (headers, body) = multipart(parts);
    request(addr, "POST", path, &headers, &body, Duration::from_secs(60)).expect("an answer")
}

/// Pixels of a PNG.
fn decode_png(bytes: &[u8]) -> image::RgbImage {
    image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .expect("a PNG")
        .to_rgb8()
}

/// Pixels of a `data:image/png;base64,...` URL.
fn decode_data_url(url: &str) -> image::RgbImage {
    use base64::Engine;
    let b64 = url
        .strip_prefix("data:image/png;base64,")
        .expect("a PNG data URL");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    decode_png(&bytes)
}

#[test]
fn the_api_draws_what_generate_draws() {
    let server = serve(&[]);
    let cow = std::fs::read(sound("field_cow.wav")).expect("the bundled sound");
    let bell = std::fs::read(sound("bell.wav")).expect("the bundled sound");

    let dir = tempfile::tempdir().expect("temp dir");
    let reference = dir.path().join("reference.png");
    let status = Command::new(env!("CARGO_BIN_EXE_sound2scene"))
        .args(["generate", "--count", "3", "--seed", "5", "--gain-db", "6"])
        .args(["--mix-weight", "0.25"])
        .arg("--audio")
        .arg(sound("field_cow.wav"))
        .arg("--mix")
        .arg(sound("bell.wav"))
        .arg("--out")
        .arg(&reference)
        .current_dir(repo())
        .stdout(Stdio::null())
        .status()
        .expect("generate runs");
    assert!(status.success());
    let reference = std::fs::read(&reference).expect("generate wrote its picture");

    let fields: &[Part<'_>] = &[
        ("audio", Some("cow.wav"), &cow),
        ("mix", Some("bell.wav"), &bell),
        ("mix_weight", None, b"0.25"),
        ("count", None, b"3"),
        ("seed", None, b"5"),
        ("gain_db", None, b"6"),
    ];
    let mut png_fields = fields.to_vec();
    png_fields.push(("format", None, b"png"));
    let png = post(&server.addr, "/api/generate", &png_fields);
    assert_eq!(png.status, 200, "{}", String::from_utf8_lossy(&png.body));
    assert_eq!(png.content_type, "image/png");
    assert_eq!(
        decode_png(&png.body),
        decode_png(&reference),
        "format=png is the grid generate writes"
    );

    let json = post(&server.addr, "/api/generate", fields);
    assert_eq!(json.status, 200);
    let answer = json.json();
    let images = answer["images"].as_array().expect("images");
    assert_eq!(images.len(), 3);
    let grid = decode_png(&reference);
    for (i, url) in images.iter().enumerate() {
        let picture = decode_data_url(url.as_str().expect("a string"));
        let (w, h) = picture.dimensions();
        assert_eq!(answer["width"], w);
        let x0 = 2 + i as u32 * (w + 2);
        let cell = image::imageops::crop_imm(&grid, x0, 2, w, h).to_image();
        assert_eq!(picture, cell, "picture {i} is generate's");
    }
    assert!((answer["audio_secs"].as_f64().expect("a length") - 4.0).abs() < 0.5);

    let steps = post(
        &server.addr,
        "/api/interpolate",
        &[
            ("a", Some("cow.wav"), &cow),
            ("b", Some("bell.wav"), &bell),
            ("steps", None, b"4"),
        ],
    );
    assert_eq!(steps.status, 200);
    let steps = steps.json();
    let images = steps["images"].as_array().expect("images");
    assert_eq!(images.len(), 4);
    assert_ne!(
        decode_data_url(images[0].as_str().unwrap()),
        decode_data_url(images[3].as_str().unwrap()),
        "the ends differ"
    );

    let info = request(
        &server.addr,
        "GET",
        "/api/info",
        &[],
        b"",
        Duration::from_secs(10),
    )
    .expect("info");
    assert_eq!(info.status, 200);
    assert_eq!(info.json()["sample_rate"], 16_000);
    let page = request(&server.addr, "GET", "/", &[], b"", Duration::from_secs(10)).expect("page");
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"));
}

#[test]
fn bad_input_gets_a_4xx_naming_it_and_the_server_goes_on() {
    let server = serve(&["--max-upload-mib", "1", "--max-audio-secs", "20"]);
    let cow = std::fs::read(sound("field_cow.wav")).expect("the bundled sound");
    let addr = server.addr.as_str();
    // 30 s of silence, over the 20 s limit but under the 1 MiB body limit (8 kHz 16-bit mono:
    // 480 kB).
    let long_wav = wav_bytes(&vec![0.0; 30 * 8_000], 8_000, WavSamples::Pcm16);
    let huge = vec![7u8; 2 * 1024 * 1024];
    let cases: Vec<(&str, Vec<Part<'_>>, u16, &str)> = vec![
        (
            "not audio",
            vec![(
                "audio",
                Some("notes.txt"),
                b"hello, this is not a sound at all",
            )],
            400,
            "notes.txt",
        ),
        (
            "NaN gain",
            vec![("audio", Some("cow.wav"), &cow), ("gain_db", None, b"NaN")],
            400,
            "gain_db",
        ),
        (
            "gain out of range",
            vec![("audio", Some("cow.wav"), &cow), ("gain_db", None, b"1000")],
            400,
            "gain_db",
        ),
        (
            "count 0",
            vec![("audio", Some("cow.wav"), &cow), ("count", None, b"0")],
            400,
            "count",
        ),
        (
            "count too large",
            vec![("audio", Some("cow.wav"), &cow), ("count", None, b"17")],
            400,
            "count",
        ),
        (
            "mix weight 2",
            vec![
                ("audio", Some("cow.wav"), &cow),
                ("mix", Some("m.wav"), &cow),
                ("mix_weight", None, b"2"),
            ],
            400,
            "mix_weight",
        ),
        (
            "wrong field",
            vec![("sound", Some("cow.wav"), &cow)],
            400,
            "unknown field",
        ),
        (
            "no audio",
            vec![("count", None, b"2")],
            400,
            "\"audio\" is missing",
        ),
        (
            "empty file",
            vec![("audio", Some("cow.wav"), b"")],
            400,
            "empty",
        ),
        (
            "twice",
            vec![
                ("audio", Some("a.wav"), &cow),
                ("audio", Some("b.wav"), &cow),
            ],
            400,
            "twice",
        ),
        (
            "bad format",
            vec![("audio", Some("cow.wav"), &cow), ("format", None, b"gif")],
            400,
            "format",
        ),
        (
            "too long",
            vec![("audio", Some("long.wav"), &long_wav)],
            400,
            "long.wav",
        ),
        (
            "too large",
            vec![("audio", Some("huge.wav"), &huge)],
            413,
            "upload",
        ),
        ("steps 1", vec![], 400, "steps"),
    ];
    for (what, parts, status, mention) in cases {
        let (path, parts) = if what == "steps 1" {
            (
                "/api/interpolate",
                vec![
                    ("a", Some("a.wav"), cow.as_slice()),
                    ("b", Some("b.wav"), cow.as_slice()),
                    ("steps", None, b"1".as_slice()),
                ],
            )
        } else {
            ("/api/generate", parts)
        };
        let answer = post(addr, path, &parts);
        assert_eq!(
            answer.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let message = answer.error();
        assert!(
            message.contains(mention),
            "{what}: the message names {mention:?}: {message}"
        );
        println!("{what}: {status} {message}");
    }

    // Not multipart at all, an empty body, a wrong method, an unknown page.
    let raw = |method: &str, path: &str, headers: &[(&str, String)], body: &[u8]| {
        request(addr, method, path, headers, body, Duration::from_secs(30)).expect("an answer")
    };
    let plain = raw(
        "POST",
        "/api/generate",
        &[("Content-Type", "audio/wav".into())],
        &cow,
    );
    assert_eq!(plain.status, 400);
    assert!(plain.error().contains("multipart"), "{}", plain.error());
    let empty = raw(
        "POST",
        "/api/generate",
        &[("Content-Type", "multipart/form-data; boundary=x".into())],
        b"",
    );
    assert_eq!(
        empty.status,
        400,
        "{}",
        String::from_utf8_lossy(&empty.body)
    );
    let missing = raw("GET", "/etc/passwd", &[], b"");
    assert_eq!(missing.status, 404);
    assert!(missing.error().contains("/api/generate"));
    let traversal = raw("GET", "/../../Cargo.toml", &[], b"");
    assert_eq!(traversal.status, 404);
    let wrong_method = raw("GET", "/api/generate", &[], b"");
    assert_eq!(wrong_method.status, 405);

    // And it still serves.
    let ok = post(addr, "/api/generate", &[("audio", Some("cow.wav"), &cow)]);
    assert_eq!(ok.status, 200);
}

/// Peak resident memory of a process in bytes (`VmHWM` in /proc/PID/status).
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Peak memory the server may reach under the load test: the model, the queue's bodies and
/// decoded sounds (8 × (16 MiB + a 60 s clip)) and the runtime, with room to spare.
const LOAD_PEAK_RSS_LIMIT: u64 = 1024 * 1024 * 1024;

#[test]
fn sixty_four_clients_get_200_or_503_and_memory_stays_bounded() {
    let server = serve(&["--queue", "4"]);
    let cow = Arc::new(std::fs::read(sound("field_cow.wav")).expect("the bundled sound"));
    let clients = 64;
    let duration = Duration::from_secs(8);
    let ok = Arc::new(AtomicUsize::new(0));
    let busy = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (addr, cow) = (server.addr.clone(), Arc::clone(&cow));
            let (ok, busy, latencies) =
                (Arc::clone(&ok), Arc::clone(&busy), Arc::clone(&latencies));
            std::thread::spawn(move || {
                while started.elapsed() < duration {
                    let (headers, body) = multipart(&[("audio", Some("cow.wav"), &cow)]);
                    let sent = Instant::now();
                    let answer = request(
                        &addr,
                        "POST",
                        "/api/generate",
                        &headers,
                        &body,
                        Duration::from_secs(60),
                    )
                    .expect("every request is answered within a minute");
                    match answer.status {
                        200 => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            latencies.lock().unwrap().push(sent.elapsed());
                        }
                        503 => {
                            busy.fetch_add(1, Ordering::Relaxed);
                            assert!(answer.error().contains("busy"));
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        other => {
                            panic!("status {other}: {}", String::from_utf8_lossy(&answer.body))
                        }
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("no client failed");
    }
    let (ok, busy) = (ok.load(Ordering::Relaxed), busy.load(Ordering::Relaxed));
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort();
    let peak = peak_rss(server.child.id()).expect("the server's memory is readable");
    println!(
        "{clients} clients for {:?}: {ok} answered 200 (median {:?}), {busy} answered 503; \
         server peak memory {:.0} MiB",
        duration,
        latencies
            .get(latencies.len() / 2)
            .copied()
            .unwrap_or_default(),
        peak as f64 / (1024.0 * 1024.0)
    );
    assert!(ok > 0, "some requests were served");
    assert!(busy > 0, "a queue of 4 turns some of 64 clients away");
    assert!(peak < LOAD_PEAK_RSS_LIMIT, "peak memory {peak} bytes");
    // And it still serves after the storm.
    let (headers, body) = multipart(&[("audio", Some("cow.wav"), &cow)]);
    let after = request(
        &server.addr,
        "POST",
        "/api/generate",
        &headers,
        &body,
        Duration::from_secs(60),
    )
    .expect("an answer");
    assert_eq!(after.status, 200);
}

/// A live session's client.
type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

fn connect_live(addr: &str) -> Socket {
    let (socket, _) = tungstenite::connect(format!("ws://{addr}/api/live")).expect("upgrade");
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
    }
    socket
}

/// The next text message as JSON.
fn next_json(socket: &mut Socket) -> serde_json::Value {
    loop {
        match socket.read().expect("a message within 30 s") {
            tungstenite::Message::Text(text) => {
                return serde_json::from_str(text.as_str()).expect("JSON");
            }
            tungstenite::Message::Close(_) => return serde_json::json!({ "type": "closed" }),
            _ => {}
        }
    }
}

fn pcm(samples: &[f32]) -> tungstenite::Message {
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    tungstenite::Message::Binary(bytes.into())
}

#[test]
fn live_sessions_get_a_picture_every_hop_and_bad_messages_are_named() {
    let server = serve(&["--live-sessions", "2"]);
    let addr = server.addr.as_str();
    let cow = sound2scene::audio::load_audio(sound("field_cow.wav")).expect("decodes");
    let info = request(addr, "GET", "/api/info", &[], b"", Duration::from_secs(10)).expect("info");
    let side = info.json()["resolution"]
        .as_u64()
        .and_then(|r| u32::try_from(r).ok())
        .expect("the model's picture side");

    let mut socket = connect_live(addr);
    let start = r#"{"sample_rate": 16000, "hop_secs": 0.25, "window_secs": 2.0, "smoothing": 0.0}"#;
    socket
        .send(tungstenite::Message::text(start))
        .expect("send");
    let ready = next_json(&mut socket);
    assert_eq!(ready["type"], "ready", "{ready}");
    assert_eq!(ready["hop_secs"], 0.25);
    // Two seconds in 0.1 s chunks, waiting for each hop's picture so none is dropped.
    let mut frames = Vec::new();
    for (i, chunk) in cow.samples[..32_000].chunks(1_600).enumerate() {
        socket.send(pcm(chunk)).expect("send");
        if (i + 1) % 5 == 0 && i > 0 {
            // 0.5 s sent: two hops are due; the second may wait for the first.
            while frames.len() < (i + 1) / 5 * 2 {
                let frame = next_json(&mut socket);
                assert_eq!(frame["type"], "frame", "{frame}");
                frames.push(frame);
            }
        }
    }
    assert_eq!(frames.len(), 8);
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(frame["index"], i);
        assert_eq!(frame["skipped"], 0);
        let time = frame["time_secs"].as_f64().expect("a time");
        assert!(
            (time - 0.25 * (i + 1) as f64).abs() < 1e-9,
            "hop {i} at {time}"
        );
        let image = decode_data_url(frame["images"][0].as_str().expect("a picture"));
        assert_eq!((image.width(), image.height()), (side, side));
    }
    // The last window is the whole two seconds: generate's picture of them.
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = dir.path().join("clip.wav");
    let exact = wav_bytes(&cow.samples[..32_000], 16_000, WavSamples::Float32);
    std::fs::write(&clip, exact).expect("write the clip");
    let out = dir.path().join("clip.png");
    let status = Command::new(env!("CARGO_BIN_EXE_sound2scene"))
        .args(["generate", "--count", "1"])
        .arg("--audio")
        .arg(&clip)
        .arg("--out")
        .arg(&out)
        .current_dir(repo())
        .stdout(Stdio::null())
        .status()
        .expect("generate runs");
    assert!(status.success());
    let grid = decode_png(&std::fs::read(&out).expect("generate wrote its picture"));
    let cell = image::imageops::crop_imm(&grid, 2, 2, side, side).to_image();
    assert_eq!(
        decode_data_url(frames[7]["images"][0].as_str().unwrap()),
        cell,
        "without smoothing, the full window is drawn as generate draws the clip"
    );

    // A volume change is taken; one out of range is refused and the session goes on.
    socket
        .send(tungstenite::Message::text(r#"{"gain_db": 6}"#))
        .expect("send");
    socket
        .send(tungstenite::Message::text(r#"{"gain_db": 600}"#))
        .expect("send");
    let refused = next_json(&mut socket);
    assert_eq!(refused["type"], "error");
    assert!(
        refused["error"].as_str().unwrap().contains("gain_db"),
        "{refused}"
    );
    socket
        .send(pcm(&cow.samples[32_000..36_000]))
        .expect("send");
    let louder = next_json(&mut socket);
    assert_eq!(louder["type"], "frame", "{louder}");

    // Two sessions at once are allowed here; a third is turned away with 503.
    let _second = connect_live(addr);
    match tungstenite::connect(format!("ws://{addr}/api/live")) {
        Err(tungstenite::Error::Http(answer)) => assert_eq!(answer.status(), 503),
        Err(other) => panic!("wrong refusal: {other}"),
        Ok(_) => panic!("a third session was accepted"),
    }
    drop(socket);

    // Bad messages end a session with a message that names what was wrong.
    for (first, then, mention) in [
        ("not json", None, "settings"),
        (r#"{"sample_rate": 0}"#, None, "sample_rate"),
        (r#"{"sample_rate": 16000, "count": 99}"#, None, "count"),
        (r#"{"sample_rate": 16000, "hop_secs": 0}"#, None, "hop"),
        (r#"{"sample_rate": 16000, "colour": 1}"#, None, "colour"),
        (r#"{"sample_rate": 16000}"#, Some(vec![0u8; 7]), "f32"),
        (
            r#"{"sample_rate": 16000, "channels": 2}"#,
            Some(vec![0u8; 4]),
            "whole frames",
        ),
        (
            r#"{"sample_rate": 16000}"#,
            Some(f32::NAN.to_le_bytes().to_vec()),
            "finite",
        ),
    ] {
        std::thread::sleep(Duration::from_millis(100)); // the previous session's place frees
        let mut socket = connect_live(addr);
        socket
            .send(tungstenite::Message::text(first))
            .expect("send");
        if let Some(bytes) = then {
            assert_eq!(next_json(&mut socket)["type"], "ready");
            socket
                .send(tungstenite::Message::Binary(bytes.into()))
                .expect("send");
        }
        let answer = next_json(&mut socket);
        assert_eq!(answer["type"], "error", "{first}: {answer}");
        let message = answer["error"].as_str().expect("a message");
        assert!(message.contains(mention), "{first}: {message}");
        println!("live {first}: {message}");
    }

    // And the server still draws.
    let mut again = connect_live(addr);
    again
        .send(tungstenite::Message::text(
            r#"{"sample_rate": 16000, "hop_secs": 0.5}"#,
        ))
        .expect("send");
    assert_eq!(next_json(&mut again)["type"], "ready");
    again.send(pcm(&cow.samples[..8_000])).expect("send");
    assert_eq!(next_json(&mut again)["type"], "frame");
}
