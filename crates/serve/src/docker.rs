//! The Engine API router and its handlers: each parses the request, runs
//! one facade call on tokio's blocking pool and shapes dockerd's answer.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use imgstore::backend::ErrorKind;
use imgstore::{ExportFormat, ImageQuery, ImportOptions, RemoveOptions, Store};
use serde::Serialize;

use crate::api::{
    API_VERSION, DeleteItem, DiskUsageJson, HistoryItem, ImageSummaryJson, MIN_API_VERSION,
    PruneReportJson, SummaryParts, error_line, go_arch, stream_line,
};
use crate::stream::{BodyReader, ChannelBody, ChannelWriter, pump_body, response_channel};
use crate::{BODY_TIMEOUT, MAX_BODY};

/// Every response's body.
type Body = BoxBody<Bytes, io::Error>;

/// A failed request: dockerd's status and `{"message": …}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "page not found")
    }
}

impl From<imgstore::Error> for ApiError {
    /// dockerd's statuses for the errdefs kinds: 404 no such image, 400 a
    /// bad parameter, 409 a conflict (an image in use or named twice).
    fn from(error: imgstore::Error) -> ApiError {
        let status = match error.kind() {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrorKind::Conflict | ErrorKind::AlreadyExists | ErrorKind::FailedPrecondition => {
                StatusCode::CONFLICT
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, error.to_string())
    }
}

type Handled = Result<Response<Body>, ApiError>;

/// Serves one request; never fails (errors are responses).
pub(crate) async fn handle(
    store: Arc<Store>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let head = request.method() == Method::HEAD;
    let mut response = match route(store, request).await {
        Ok(response) => response,
        Err(error) => json_response(
            error.status,
            &Message {
                message: error.message,
            },
        ),
    };
    response.headers_mut().insert(
        "Server",
        HeaderValue::from_static(concat!("imgstore/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    response
        .headers_mut()
        .insert("Api-Version", HeaderValue::from_static(API_VERSION));
    if head {
        *response.body_mut() = empty();
    }
    Ok(response)
}

/// dockerd's error body.
#[derive(Serialize)]
struct Message {
    message: String,
}

/// The request's path with its `/v1.41` prefix checked and removed.
fn api_path(path: &str) -> Result<&str, ApiError> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok(path);
    };
    let (version, rest) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Ok(path);
    }
    let parsed = parse_version(version).ok_or_else(ApiError::not_found)?;
    if parsed > parse_version(API_VERSION).unwrap_or_default() {
        return Err(ApiError::bad_request(format!(
            "client version {version} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if parsed < parse_version(MIN_API_VERSION).unwrap_or_default() {
        return Err(ApiError::bad_request(format!(
            "client version {version} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    Ok(rest)
}

/// `1.41` as (1, 41).
fn parse_version(version: &str) -> Option<(u32, u32)> {
    let (major, minor) = version.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

async fn route(store: Arc<Store>, request: Request<Incoming>) -> Handled {
    let (parts, body) = request.into_parts();
    let path = percent_decode(parts.uri.path())
        .ok_or_else(|| ApiError::bad_request("the request path is not valid UTF-8"))?;
    let path = api_path(&path)?.to_owned();
    let query = Query::parse(parts.uri.query().unwrap_or(""))?;
    let method = parts.method;
    if method == Method::POST && path == "/images/load" {
        return load(store, body).await;
    }
    // Every other endpoint takes no body: one is read (so the connection
    // stays usable) up to a bound, and refused past it.
    read_small_body(&parts.headers, body).await?;
    let is_get = method == Method::GET || method == Method::HEAD;
    match (&method, path.as_str()) {
        (_, "/_ping") if is_get => Ok(ping()),
        (_, "/version") if is_get => Ok(json_response(StatusCode::OK, &version())),
        (_, "/info") if is_get => info(store).await,
        (_, "/images/json") if is_get => list(store, &query).await,
        (_, "/images/get") if is_get => save(store, query.all("names")).await,
        (_, "/system/df") if is_get => disk_usage(store).await,
        (&Method::POST, "/images/prune") => prune(store, &query).await,
        _ => {
            let Some(rest) = path.strip_prefix("/images/") else {
                return Err(ApiError::not_found());
            };
            let with = |suffix: &str| rest.strip_suffix(suffix).filter(|name| !name.is_empty());
            match method {
                Method::GET | Method::HEAD => {
                    if let Some(name) = with("/json") {
                        inspect(store, image_name(name)?).await
                    } else if let Some(name) = with("/history") {
                        history(store, image_name(name)?).await
                    } else if let Some(name) = with("/get") {
                        save(store, vec![image_name(name)?]).await
                    } else {
                        Err(ApiError::not_found())
                    }
                }
                Method::POST => match with("/tag") {
                    Some(name) => tag(store, image_name(name)?, &query).await,
                    None => Err(ApiError::not_found()),
                },
                Method::DELETE if !rest.is_empty() => {
                    remove(store, image_name(rest)?, &query).await
                }
                _ => Err(ApiError::not_found()),
            }
        }
    }
}

/// Reads and drops a body no endpoint needs, refusing one larger than
/// [`MAX_BODY`] (413) or stalling longer than [`BODY_TIMEOUT`] (408).
async fn read_small_body(headers: &hyper::HeaderMap, body: Incoming) -> Result<(), ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {MAX_BODY} bytes"),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "the request body stalled",
        )),
    }
}

/// An image named in a path: a reference or an ID (prefix); anything else
/// is dockerd's 400 `invalid reference format`, not a 404.
fn image_name(name: &str) -> Result<String, ApiError> {
    let is_id = name
        .strip_prefix("sha256:")
        .unwrap_or(name)
        .bytes()
        .all(|b| b.is_ascii_hexdigit());
    if !is_id && let Err(e) = imgstore::refs::reference::Reference::parse_normalized(name) {
        return Err(ApiError::bad_request(e.to_string()));
    }
    Ok(name.to_owned())
}

/// Runs a blocking store call on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    call: impl FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || call(&store))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn empty() -> Body {
    full(Bytes::new())
}

/// `value` as dockerd writes JSON: compact, no HTML escapes, a newline.
fn json_response(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let mut text = serde_json::to_vec(value).unwrap_or_default();
    text.push(b'\n');
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `GET /_ping`: `OK` with the headers the docker CLI negotiates from.
fn ping() -> Response<Body> {
    let mut response = Response::new(full("OK"));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        "Cache-Control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    headers.insert("Pragma", HeaderValue::from_static("no-cache"));
    headers.insert("Docker-Experimental", HeaderValue::from_static("false"));
    headers.insert("Ostype", HeaderValue::from_static("linux"));
    response
}

/// `GET /version` (`types.Version`).
fn version() -> serde_json::Value {
    let version = env!("CARGO_PKG_VERSION");
    serde_json::json!({
        "Platform": { "Name": "imgstore" },
        "Components": [{
            "Name": "Engine",
            "Version": version,
            "Details": { "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux", "Arch": go_arch() },
        }],
        "Version": version,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": "",
        "BuildTime": "",
    })
}

/// `GET /info`: a minimal `types.Info`: no containers, the image count,
/// swarm inactive.
async fn info(store: Arc<Store>) -> Handled {
    let (images, root) = blocking(&store, |store| {
        Ok((store.images()?.len(), store.root().display().to_string()))
    })
    .await?;
    let body = serde_json::json!({
        "ID": "",
        "Containers": 0,
        "ContainersRunning": 0,
        "ContainersPaused": 0,
        "ContainersStopped": 0,
        "Images": images,
        "Driver": "imgstore",
        "DockerRootDir": root,
        "OperatingSystem": "imgstore",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "NCPU": std::thread::available_parallelism().map_or(1, usize::from),
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Swarm": { "NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null },
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /images/json?all=&filters=&digests=&shared-size=`.
async fn list(store: Arc<Store>, query: &Query) -> Handled {
    let image_query = ImageQuery {
        all: query.flag("all"),
        filters: query.filters()?,
    };
    let shared_size = query.flag("shared-size");
    let rows = blocking(&store, move |store| {
        let listed = store.list_images(&image_query)?;
        let name_digests = store.name_digests()?;
        let shared: BTreeMap<_, u64> = if shared_size {
            store
                .disk_usage()?
                .images
                .into_iter()
                .map(|image| (image.id, image.shared_size))
                .collect()
        } else {
            BTreeMap::new()
        };
        Ok(listed
            .iter()
            .map(|summary| {
                let shared = shared_size.then(|| shared.get(&summary.id).copied().unwrap_or(0));
                ImageSummaryJson::new(SummaryParts::listed(summary, shared), &name_digests)
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(json_response(StatusCode::OK, &rows))
}

/// `GET /images/{name}/json`: the facade's `InspectView` is dockerd's
/// `ImageInspect` already.
async fn inspect(store: Arc<Store>, name: String) -> Handled {
    let view = blocking(&store, move |store| Ok(store.inspect(&name)?)).await?;
    Ok(json_response(StatusCode::OK, &view))
}

/// `GET /images/{name}/history`: newest first; the image's own entry
/// carries its tags.
async fn history(store: Arc<Store>, name: String) -> Handled {
    let items = blocking(&store, move |store| {
        let entries = store.history(&name)?;
        let tags = store.inspect(&name)?.repo_tags;
        Ok(entries
            .iter()
            .map(|entry| HistoryItem::new(entry, entry.id.as_ref().map(|_| tags.clone())))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(json_response(StatusCode::OK, &items))
}

/// `POST /images/{name}/tag?repo=&tag=`: 201, no body.
async fn tag(store: Arc<Store>, name: String, query: &Query) -> Handled {
    let repo = query.first("repo").unwrap_or_default();
    if repo.is_empty() {
        return Err(ApiError::bad_request(
            "invalid reference format: repository name must have at least one component",
        ));
    }
    let target = match query.first("tag").filter(|tag| !tag.is_empty()) {
        Some(tag) => format!("{repo}:{tag}"),
        None => repo.to_owned(),
    };
    blocking(&store, move |store| Ok(store.tag(&name, &target)?)).await?;
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// `DELETE /images/{name}?force=&noprune=`: the `Untagged` / `Deleted`
/// items.
async fn remove(store: Arc<Store>, name: String, query: &Query) -> Handled {
    let options = RemoveOptions {
        force: query.flag("force"),
        prune: !query.flag("noprune"),
    };
    let items = blocking(&store, move |store| {
        let report = store.remove_with(&name, &options)?;
        Ok(report
            .docker_lines()
            .into_iter()
            .map(DeleteItem::from)
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(json_response(StatusCode::OK, &items))
}

/// `POST /images/prune?filters=`: `dangling=false` removes every unused
/// image (`docker image prune -a`), otherwise the dangling ones.
async fn prune(store: Arc<Store>, query: &Query) -> Handled {
    let mut all = false;
    for filter in query.filters()? {
        match filter.as_str() {
            "dangling=true" | "dangling=1" => all = false,
            "dangling=false" | "dangling=0" => all = true,
            other => {
                return Err(ApiError::bad_request(format!(
                    "invalid filter '{other}': image prune takes only dangling=true|false"
                )));
            }
        }
    }
    let report = blocking(&store, move |store| Ok(store.prune(all)?)).await?;
    let deleted: Vec<DeleteItem> = report
        .images
        .iter()
        .flat_map(imgstore::RemoveReport::docker_lines)
        .map(DeleteItem::from)
        .collect();
    let body = PruneReportJson {
        images_deleted: (!deleted.is_empty()).then_some(deleted),
        space_reclaimed: report.space_reclaimed,
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /system/df`: the images, newest first (as dockerd lists them),
/// with their shared sizes.
async fn disk_usage(store: Arc<Store>) -> Handled {
    let body = blocking(&store, |store| {
        let usage = store.disk_usage()?;
        let name_digests = store.name_digests()?;
        let mut images: Vec<&imgstore::ImageUsage> = usage.images.iter().collect();
        // Stable: equal times keep the ID order the usage comes in.
        images.sort_by_key(|image| {
            std::cmp::Reverse(crate::api::unix_seconds(image.created.as_deref()))
        });
        let rows = images
            .into_iter()
            .map(|image| ImageSummaryJson::new(SummaryParts::usage(image), &name_digests))
            .collect();
        Ok(DiskUsageJson::new(usage.layers_size, rows))
    })
    .await?;
    Ok(json_response(StatusCode::OK, &body))
}

/// `POST /images/load?quiet=`: the body streamed into the import (never
/// held whole), then dockerd's JSON messages; an import that fails ends
/// them with an error message, status 200 as dockerd.
async fn load(store: Arc<Store>, body: Incoming) -> Handled {
    let (queue, reader) = BodyReader::channel();
    let pump = tokio::spawn(pump_body(body, queue));
    let imported = blocking(&store, move |store| {
        Ok(store.import_reader(reader, "request body", &ImportOptions::default()))
    })
    .await?;
    pump.abort();
    let text = match imported {
        Ok(imported) => imported
            .iter()
            .flat_map(imgstore::Imported::load_messages)
            .map(|line| stream_line(&(line + "\n")))
            .collect::<String>(),
        Err(error) => error_line(&error.to_string()),
    };
    let mut response = Response::new(full(text));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// `GET /images/get?names=…` and `/images/{name}/get`: a `docker save`
/// tar streamed as the export writes it. The images are resolved before
/// the first byte, so an unknown one is a 404; a failure after that cuts
/// the body short.
async fn save(store: Arc<Store>, names: Vec<String>) -> Handled {
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given"));
    }
    let (sender, mut receiver) = response_channel();
    let error_sender = sender.clone();
    let store = Arc::clone(&store);
    let mut export = tokio::task::spawn_blocking(move || {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        store.export_to_writer(
            &names,
            ChannelWriter::new(sender),
            "response",
            ExportFormat::DockerSave,
        )
    });
    let first = tokio::select! {
        first = receiver.recv() => first,
        finished = &mut export => {
            let result = finished
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            if let Err(error) = result {
                if receiver.is_empty() {
                    return Err(error.into());
                }
                let _ = error_sender.send(Err(io::Error::other(error.to_string()))).await;
            }
            drop(error_sender);
            return Ok(tar_response(None, receiver));
        }
    };
    tokio::spawn(async move {
        let failure = match export.await {
            Ok(Ok(_)) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(error) => Some(error.to_string()),
        };
        if let Some(message) = failure {
            let _ = error_sender.send(Err(io::Error::other(message))).await;
        }
    });
    Ok(tar_response(first.transpose().ok().flatten(), receiver))
}

fn tar_response(
    first: Option<Bytes>,
    rest: tokio::sync::mpsc::Receiver<Result<Bytes, io::Error>>,
) -> Response<Body> {
    let mut response = Response::new(ChannelBody::new(first, rest).boxed());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    response
}

/// A request's query: `key=value` pairs, percent-decoded, in order.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: &str) -> Result<Query, ApiError> {
        let mut pairs = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |text: &str| {
                percent_decode(&text.replace('+', " ")).ok_or_else(|| {
                    ApiError::bad_request(format!("invalid query parameter {pair:?}"))
                })
            };
            pairs.push((decode(key)?, decode(value)?));
        }
        Ok(Query(pairs))
    }

    fn first(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// dockerd's `BoolValue`: anything but empty, `0`, `no`, `false` and
    /// `none` is true.
    fn flag(&self, key: &str) -> bool {
        let value = self.first(key).unwrap_or("").trim().to_ascii_lowercase();
        !matches!(value.as_str(), "" | "0" | "no" | "false" | "none")
    }

    /// The `filters` parameter as `key=value` strings: dockerd's JSON,
    /// `{"key": {"value": true}}` or the older `{"key": ["value"]}`.
    fn filters(&self) -> Result<Vec<String>, ApiError> {
        let Some(text) = self.first("filters").filter(|text| !text.is_empty()) else {
            return Ok(Vec::new());
        };
        let invalid = |reason: String| ApiError::bad_request(format!("invalid filter: {reason}"));
        let parsed: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut filters = Vec::new();
        for (key, values) in parsed {
            let values: Vec<String> = match values {
                serde_json::Value::Object(map) => map
                    .into_iter()
                    .filter(|(_, on)| on.as_bool() == Some(true))
                    .map(|(value, _)| value)
                    .collect(),
                serde_json::Value::Array(list) => list
                    .into_iter()
                    .map(|value| match value {
                        serde_json::Value::String(value) => Ok(value),
                        other => Err(invalid(format!("{key}: {other} is not a string"))),
                    })
                    .collect::<Result<_, _>>()?,
                other => return Err(invalid(format!("{key}: {other} is not a set of values"))),
            };
            filters.extend(values.into_iter().map(|value| format!("{key}={value}")));
        }
        Ok(filters)
    }
}

/// `%XX` sequences decoded; `None` when the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            decoded.push((high * 16 + low) as u8);
            i += 3;
            continue;
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lose_their_version_prefix() {
        assert_eq!(api_path("/v1.41/images/json").ok(), Some("/images/json"));
        assert_eq!(api_path("/images/json").ok(), Some("/images/json"));
        assert_eq!(api_path("/v1.24/_ping").ok(), Some("/_ping"));
        let too_new = api_path("/v1.43/images/json").err().map(|e| e.message);
        assert_eq!(
            too_new.as_deref(),
            Some("client version 1.43 is too new. Maximum supported API version is 1.41")
        );
        assert!(api_path("/v1.11/images/json").is_err());
        assert_eq!(api_path("/version").ok(), Some("/version"));
    }

    #[test]
    fn queries_decode_and_filters_parse() {
        let query = Query::parse(
            "all=1&names=a%2Fb&names=c&filters=%7B%22reference%22%3A%7B%22busy*%22%3Atrue%7D%7D&x",
        )
        .map_err(|e| e.message);
        let query = match query {
            Ok(query) => query,
            Err(message) => panic!("{message}"),
        };
        assert!(query.flag("all"));
        assert!(!query.flag("x"));
        assert_eq!(query.all("names"), ["a/b", "c"]);
        assert_eq!(
            query.filters().map_err(|e| e.message),
            Ok(vec!["reference=busy*".to_owned()])
        );
        let legacy = Query::parse("filters=%7B%22dangling%22%3A%5B%22true%22%5D%7D")
            .and_then(|q| q.filters())
            .map_err(|e| e.message);
        assert_eq!(legacy, Ok(vec!["dangling=true".to_owned()]));
        let bad = Query::parse("filters=%7Bnope").and_then(|q| q.filters());
        assert_eq!(bad.map_err(|e| e.status), Err(StatusCode::BAD_REQUEST));
        assert_eq!(percent_decode("50%").as_deref(), Some("50%"));
        assert_eq!(percent_decode("%41%4").as_deref(), Some("A%4"));
    }
}
