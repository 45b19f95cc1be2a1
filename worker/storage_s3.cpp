// s3:// backend: path-style requests to an S3-compatible endpoint, signed
// with SigV4 by libcurl (CURLOPT_AWS_SIGV4). Queries are canonicalised by
// s3_request.cpp because curl signs them verbatim; every request carries
// x-amz-content-sha256 with the real payload hash. Uploads stream: a body up
// to --multipart-threshold is one PUT, a larger one a multipart upload of
// --multipart-part-size parts (one part in memory at a time).
#include <curl/curl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "config.h"
#include "s3_request.h"
#include "storage.h"

namespace odooops::worker {

bool write_all(int fd, const char* data, size_t n);  // storage.cpp

namespace {

const std::string kEmptySha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct Response {
  long status = 0;
  std::string body;  // error bodies and XML answers (capped)
  std::string etag;
  CURLcode curl = CURLE_OK;
  std::string curl_error;
};

struct Body {
  const char* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
};

struct Sink {  // for GET: stream a 2xx body to fd, keep an error body
  CURL* curl;
  int fd;
  Sha256* sha;
  long long* size;
  Response* resp;
  bool write_failed = false;
};

size_t read_body(char* buf, size_t size, size_t n, void* user) {
  auto* b = static_cast<Body*>(user);
  size_t want = std::min(size * n, b->size - b->pos);
  memcpy(buf, b->data + b->pos, want);
  b->pos += want;
  return want;
}

size_t collect(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<Response*>(user);
  if (r->body.size() < (1 << 20)) r->body.append(data, size * n);
  return size * n;
}

size_t stream_out(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  long code = 0;
  curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
  if (code < 200 || code >= 300) return collect(data, size, n, s->resp);
  s->sha->update(data, size * n);
  *s->size += static_cast<long long>(size * n);
  if (!write_all(s->fd, data, size * n)) {
    s->write_failed = true;
    return 0;
  }
  return size * n;
}

size_t header_line(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<Response*>(user);
  std::string line(data, size * n);
  if (line.size() > 5 && strncasecmp(line.c_str(), "etag:", 5) == 0) {
    std::string v = line.substr(5);
    size_t b = v.find_first_not_of(" \t"), e = v.find_last_not_of(" \t\r\n");
    r->etag = b == std::string::npos ? "" : v.substr(b, e - b + 1);
  }
  return size * n;
}

std::string xml_unescape(std::string_view s) {
  static const std::pair<std::string_view, char> entities[] = {
      {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
  std::string out;
  for (size_t i = 0; i < s.size();) {
    bool replaced = false;
    for (const auto& [entity, c] : entities) {
      if (s.substr(i, entity.size()) == entity) {
        out += c;
        i += entity.size();
        replaced = true;
        break;
      }
    }
    if (!replaced) out += s[i++];
  }
  return out;
}

class S3Storage : public Storage {
 public:
  explicit S3Storage(const Config& cfg) : cfg_(cfg) {
    if (cfg.s3_access_key.empty() || cfg.s3_secret_key.empty())
      throw StorageError(
          "s3:// storage needs credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    endpoint_ = cfg.s3_endpoint.empty() ? "https://s3." + cfg.s3_region + ".amazonaws.com"
                                        : cfg.s3_endpoint;
    while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
  }

  ObjectInfo put(const std::string& url, int in) override {
    S3Location loc = parse(url);
    const size_t threshold = static_cast<size_t>(cfg_.multipart_threshold);
    const size_t part = static_cast<size_t>(cfg_.multipart_part_size);
    std::vector<char> buf(threshold);
    Sha256 sha;
    ObjectInfo info;
    info.location = url;
    size_t filled = fill(in, buf.data(), threshold);
    sha.update(buf.data(), filled);
    info.size = static_cast<long long>(filled);
    if (filled < threshold) {  // all of it fits: one PUT
      Response r = request_retry("PUT", loc, "", buf.data(), filled);
      check(r, "PUT " + url);
      info.sha256 = sha.hex();
      return info;
    }
    std::string upload_id;
    {
      Response r = request_retry("POST", loc, canonical_query({{"uploads", ""}}), nullptr, 0);
      check(r, "starting the multipart upload of " + url);
      upload_id = xml_value(r.body, "UploadId");
      if (upload_id.empty()) throw StorageError("S3 answered no UploadId for " + url);
    }
    std::string parts_xml;
    int number = 0;
    try {
      size_t offset = 0;
      bool eof = false;
      while (true) {
        // Send full parts from the buffer; keep the remainder for the next read.
        while (filled - offset >= part || (eof && filled > offset)) {
          size_t n = std::min(part, filled - offset);
          ++number;
          std::string q =
              canonical_query({{"partNumber", std::to_string(number)}, {"uploadId", upload_id}});
          Response r = request_retry("PUT", loc, q, buf.data() + offset, n);
          check(r, "uploading part " + std::to_string(number) + " of " + url);
          if (r.etag.empty())
            throw StorageError("S3 answered no ETag for part " + std::to_string(number));
          parts_xml += "<Part><PartNumber>" + std::to_string(number) + "</PartNumber><ETag>" +
                       r.etag + "</ETag></Part>";
          offset += n;
        }
        if (eof) break;
        memmove(buf.data(), buf.data() + offset, filled - offset);
        filled -= offset;
        offset = 0;
        size_t got = fill(in, buf.data() + filled, part - filled);
        sha.update(buf.data() + filled, got);
        info.size += static_cast<long long>(got);
        filled += got;
        if (filled < part) eof = true;
      }
      std::string xml = "<CompleteMultipartUpload>" + parts_xml + "</CompleteMultipartUpload>";
      Response r = request_retry("POST", loc, canonical_query({{"uploadId", upload_id}}),
                                 xml.data(), xml.size());
      check(r, "completing the multipart upload of " + url);
      if (r.body.find("<Error>") != std::string::npos)
        throw StorageError("completing the multipart upload of " + url + ": " +
                           xml_value(r.body, "Message"));
    } catch (...) {
      Response r = request("DELETE", loc, canonical_query({{"uploadId", upload_id}}), nullptr, 0);
      (void)r;
      throw;
    }
    info.sha256 = sha.hex();
    return info;
  }

  ObjectInfo get(const std::string& url, int out) override {
    S3Location loc = parse(url);
    Sha256 sha;
    ObjectInfo info;
    info.location = url;
    Response resp;
    CURL* c = easy("GET", loc, "", kEmptySha, resp);
    Sink sink{c, out, &sha, &info.size, &resp};
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, stream_out);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    perform(c, resp);
    if (sink.write_failed)
      throw StorageError("writing the download of " + url + ": " + strerror(errno));
    check(resp, "GET " + url);
    info.sha256 = sha.hex();
    return info;
  }

  void remove(const std::string& url) override {
    S3Location loc = parse(url);
    Response r = request_retry("DELETE", loc, "", nullptr, 0);
    if (r.status == 404) return;
    check(r, "DELETE " + url);
  }

  std::vector<std::string> list(const std::string& prefix_url) override {
    S3Location loc = parse(prefix_url);
    std::vector<std::string> out;
    std::string token;
    for (;;) {
      std::map<std::string, std::string> q = {{"list-type", "2"}, {"prefix", loc.key}};
      if (!token.empty()) q["continuation-token"] = token;
      S3Location bucket{loc.bucket, ""};
      Response r = request_retry("GET", bucket, canonical_query(q), nullptr, 0);
      check(r, "listing " + prefix_url);
      std::string_view body = r.body;
      size_t pos = 0;
      while ((pos = body.find("<Key>", pos)) != std::string_view::npos) {
        size_t end = body.find("</Key>", pos);
        if (end == std::string_view::npos) break;
        out.push_back("s3://" + loc.bucket + "/" +
                      xml_unescape(body.substr(pos + 5, end - pos - 5)));
        pos = end;
      }
      if (xml_value(r.body, "IsTruncated") != "true") break;
      token = xml_value(r.body, "NextContinuationToken");
      if (token.empty()) break;
    }
    return out;
  }

 private:
  S3Location parse(const std::string& url) {
    try {
      return parse_s3_url(url);
    } catch (const std::invalid_argument& e) {
      throw StorageError(e.what());
    }
  }

  static size_t fill(int fd, char* buf, size_t want) {
    size_t got = 0;
    while (got < want) {
      ssize_t n = read(fd, buf + got, want - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw StorageError(std::string("reading the upload: ") + strerror(errno));
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    return got;
  }

  CURL* easy(const char* method, const S3Location& loc, const std::string& query,
             const std::string& payload_sha, Response& resp) {
    CURL* c = curl_easy_init();
    if (!c) throw StorageError("libcurl: cannot create a handle");
    std::string url = s3_request_url(endpoint_, loc, query);
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    std::string sigv4 = "aws:amz:" + cfg_.s3_region + ":s3";
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4.c_str());
    curl_easy_setopt(c, CURLOPT_USERNAME, cfg_.s3_access_key.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, cfg_.s3_secret_key.c_str());
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_line);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &resp);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf_);
    errbuf_[0] = 0;
    headers_ = curl_slist_append(nullptr, ("x-amz-content-sha256: " + payload_sha).c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers_);
    return c;
  }

  void perform(CURL* c, Response& resp) {
    resp.curl = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
    if (resp.curl != CURLE_OK)
      resp.curl_error = errbuf_[0] ? errbuf_ : curl_easy_strerror(resp.curl);
    curl_slist_free_all(headers_);
    headers_ = nullptr;
    curl_easy_cleanup(c);
  }

  Response request(const char* method, const S3Location& loc, const std::string& query,
                   const char* data, size_t size) {
    Response resp;
    std::string payload_sha = data ? sha256_hex(data, size) : kEmptySha;
    CURL* c = easy(method, loc, query, payload_sha, resp);
    Body body{data, size, 0};
    std::string m = method;
    if (m == "PUT" || (m == "POST" && data)) {
      curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(c, CURLOPT_READFUNCTION, read_body);
      curl_easy_setopt(c, CURLOPT_READDATA, &body);
      curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
    } else if (m == "POST") {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    if (m == "DELETE" || m == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, m == "HEAD" ? 1L : 0L);
    perform(c, resp);
    return resp;
  }

  // Transport errors, 5xx and 429 are retried three times with backoff.
  Response request_retry(const char* method, const S3Location& loc, const std::string& query,
                         const char* data, size_t size) {
    Response r;
    for (int attempt = 0; attempt < 4; ++attempt) {
      if (attempt) std::this_thread::sleep_for(std::chrono::milliseconds(250 << attempt));
      r = request(method, loc, query, data, size);
      if (r.curl == CURLE_OK && r.status < 500 && r.status != 429) return r;
    }
    return r;
  }

  void check(const Response& r, const std::string& what) {
    if (r.curl != CURLE_OK)
      throw StorageError(what + ": S3 endpoint " + endpoint_ + " unreachable: " + r.curl_error);
    if (r.status < 200 || r.status >= 300) {
      std::string code = xml_value(r.body, "Code"), msg = xml_value(r.body, "Message");
      throw StorageError(what + ": HTTP " + std::to_string(r.status) +
                         (code.empty() ? "" : " " + code) + (msg.empty() ? "" : ": " + msg));
    }
  }

  const Config& cfg_;
  std::string endpoint_;
  char errbuf_[CURL_ERROR_SIZE] = {};
  curl_slist* headers_ = nullptr;
};

}  // namespace

std::unique_ptr<Storage> make_s3_storage(const Config& cfg) {
  return std::make_unique<S3Storage>(cfg);
}

}  // namespace odooops::worker
