package io.spiffeagent.interop;

import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import io.spiffe.bundle.jwtbundle.JwtBundleSet;
import io.spiffe.bundle.x509bundle.X509BundleSet;
import io.spiffe.spiffeid.TrustDomain;
import io.spiffe.svid.jwtsvid.JwtSvid;
import io.spiffe.svid.x509svid.X509Svid;
import io.spiffe.svid.x509svid.X509SvidValidator;
import io.spiffe.workloadapi.DefaultJwtSource;
import io.spiffe.workloadapi.DefaultWorkloadApiClient;
import io.spiffe.workloadapi.DefaultX509Source;
import io.spiffe.workloadapi.JwtSource;
import io.spiffe.workloadapi.JwtSourceOptions;
import io.spiffe.workloadapi.WorkloadApiClient;
import io.spiffe.workloadapi.X509Context;

import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Interop peer for spiffe-agent: drives java-spiffe's own Workload API client and validators against the
 * socket in SPIFFE_ENDPOINT_SOCKET and prints one JSON line on stdout.
 *
 * <pre>java -jar java-client.jar [--audience A] [--timeout-seconds N]</pre>
 *
 * Success: {"ok":true, "x509Svids":[...], "x509BundleTrustDomains":[...], "jwtSvid":{...}, ...}, exit 0.
 * Any failure: {"ok":false, "step", "code", "error"} ("code" is the gRPC status in go-spiffe's spelling,
 * e.g. PermissionDenied, or "Error" when no gRPC status is involved), exit 1. Usage errors exit 2.
 */
public final class JavaClient {
    private static final AtomicBoolean DONE = new AtomicBoolean(false);
    private static volatile String step = "start";

    private JavaClient() {
    }

    public static void main(String[] args) {
        String audience = "spiffe://example.org/java-interop";
        long timeoutSeconds = 30;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--audience") && i + 1 < args.length) {
                audience = args[++i];
            } else if (a.equals("--timeout-seconds") && i + 1 < args.length) {
                timeoutSeconds = Long.parseLong(args[++i]);
            } else {
                System.err.println("usage: java -jar java-client.jar [--audience A] [--timeout-seconds N]");
                System.exit(2);
            }
        }
        String endpoint = System.getenv("SPIFFE_ENDPOINT_SOCKET");
        if (endpoint == null || endpoint.isEmpty()) {
            System.err.println("java-client: SPIFFE_ENDPOINT_SOCKET is not set");
            System.exit(2);
        }
        startWatchdog(timeoutSeconds);
        try {
            String out = run(endpoint, audience, Duration.ofSeconds(timeoutSeconds));
            finish(out, 0);
        } catch (Throwable t) {
            finish(failure(step, t), 1);
        }
    }

    private static String run(String endpoint, String audience, Duration timeout) throws Exception {
        StringBuilder out = new StringBuilder("{\"ok\":true");
        step = "newClient";
        DefaultWorkloadApiClient.ClientOptions opts =
                DefaultWorkloadApiClient.ClientOptions.builder().spiffeSocketPath(endpoint).build();
        try (WorkloadApiClient client = DefaultWorkloadApiClient.newClient(opts)) {
            step = "FetchX509Context";
            X509Context ctx = client.fetchX509Context();
            X509BundleSet bundles = ctx.getX509BundleSet();
            List<String> svidJson = new ArrayList<>();
            for (X509Svid svid : ctx.getX509Svids()) {
                step = "VerifyChain";
                // Chain to an authority of the bundle the agent served for the SVID's trust domain.
                X509SvidValidator.verifyChain(svid.getChain(), bundles);
                X509Certificate leaf = svid.getLeaf();
                svidJson.add("{\"spiffeId\":" + str(svid.getSpiffeId().toString())
                        + ",\"hint\":" + str(svid.getHint())
                        + ",\"chainLength\":" + svid.getChain().size()
                        + ",\"chainVerified\":true"
                        + ",\"uriSans\":" + strList(uriSans(leaf))
                        + ",\"notBefore\":" + str(leaf.getNotBefore().toInstant().toString())
                        + ",\"notAfter\":" + str(leaf.getNotAfter().toInstant().toString())
                        + ",\"keyAlgorithm\":" + str(svid.getPrivateKey().getAlgorithm()) + "}");
            }
            out.append(",\"x509Svids\":[").append(String.join(",", svidJson)).append(']');
            out.append(",\"x509BundleTrustDomains\":").append(strList(idStrings(bundles.getBundles().keySet())));
            out.append(",\"x509BundleAuthorities\":")
                    .append(bundles.getBundleForTrustDomain(ctx.getDefaultSvid().getSpiffeId().getTrustDomain())
                            .getX509Authorities().size());

            step = "FetchJWTSVID";
            JwtSvid fetched = client.fetchJwtSvid(audience);
            step = "FetchJWTBundles";
            JwtBundleSet jwtBundles = client.fetchJwtBundles();
            step = "ParseAndValidate";
            // Signature, kid, alg, typ, aud and exp checked by java-spiffe against the agent's JWT bundles.
            JwtSvid validated = JwtSvid.parseAndValidate(fetched.getToken(), jwtBundles, Collections.singleton(audience));
            out.append(",\"jwtSvid\":").append(jwtJson(validated));
            out.append(",\"jwtBundleTrustDomains\":").append(strList(idStrings(jwtBundles.getBundles().keySet())));
        }

        // The streaming paths most Java services use (SpiffeSslContextFactory builds on X509Source).
        step = "X509Source";
        DefaultX509Source.X509SourceOptions xo = DefaultX509Source.X509SourceOptions.builder()
                .spiffeSocketPath(endpoint).initTimeout(timeout).build();
        try (DefaultX509Source source = DefaultX509Source.newSource(xo)) {
            X509Svid svid = source.getX509Svid();
            X509SvidValidator.verifyChain(svid.getChain(), source);
            out.append(",\"x509SourceSpiffeId\":").append(str(svid.getSpiffeId().toString()));
        }
        step = "JwtSource";
        JwtSourceOptions jo = JwtSourceOptions.builder().spiffeSocketPath(endpoint).initTimeout(timeout).build();
        JwtSource jwtSource = DefaultJwtSource.newSource(jo);
        try {
            JwtSvid svid = jwtSource.fetchJwtSvid(audience);
            JwtSvid validated = JwtSvid.parseAndValidate(svid.getToken(), jwtSource, Collections.singleton(audience));
            out.append(",\"jwtSourceSubject\":").append(str(validated.getSpiffeId().toString()));
        } finally {
            jwtSource.close();
        }
        return out.append('}').toString();
    }

    private static String jwtJson(JwtSvid svid) {
        return "{\"sub\":" + str(svid.getSpiffeId().toString())
                + ",\"aud\":" + strList(new ArrayList<>(svid.getAudience()))
                + ",\"exp\":" + str(svid.getExpiry().toInstant().toString())
                + ",\"iat\":" + (svid.getIssuedAt() == null ? "null" : str(svid.getIssuedAt().toInstant().toString()))
                + ",\"hint\":" + str(svid.getHint())
                + "}";
    }

    private static List<String> uriSans(X509Certificate cert) throws Exception {
        List<String> uris = new ArrayList<>();
        if (cert.getSubjectAlternativeNames() == null) {
            return uris;
        }
        for (List<?> san : cert.getSubjectAlternativeNames()) {
            if (san.size() == 2 && Integer.valueOf(6).equals(san.get(0))) {
                uris.add(String.valueOf(san.get(1)));
            }
        }
        return uris;
    }

    private static List<String> idStrings(Set<TrustDomain> tds) {
        List<String> ids = new ArrayList<>();
        for (TrustDomain td : tds) {
            ids.add(td.toIdString());
        }
        Collections.sort(ids);
        return ids;
    }

    /** The gRPC status behind a java-spiffe exception, spelled like go-spiffe's codes.Code (PermissionDenied). */
    private static String failure(String failedStep, Throwable t) {
        String code = "Error";
        StringBuilder msg = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (msg.length() > 0) {
                msg.append(": ");
            }
            msg.append(c.getClass().getSimpleName()).append(": ").append(c.getMessage());
            Status status = null;
            if (c instanceof StatusRuntimeException) {
                status = ((StatusRuntimeException) c).getStatus();
            } else if (c instanceof StatusException) {
                status = ((StatusException) c).getStatus();
            }
            if (status != null && code.equals("Error")) {
                code = camel(status.getCode().name());
            }
            if (c.getCause() == c) {
                break;
            }
        }
        return "{\"ok\":false,\"step\":" + str(failedStep) + ",\"code\":" + str(code) + ",\"error\":" + str(msg.toString()) + "}";
    }

    private static String camel(String upperSnake) {
        StringBuilder b = new StringBuilder();
        for (String part : upperSnake.split("_")) {
            if (!part.isEmpty()) {
                b.append(part.charAt(0)).append(part.substring(1).toLowerCase());
            }
        }
        return b.toString();
    }

    // A hung stream must not hang the test: report which step was waiting and exit.
    private static void startWatchdog(long timeoutSeconds) {
        Thread t = new Thread(() -> {
            try {
                Thread.sleep(timeoutSeconds * 1000 + 5000);
            } catch (InterruptedException e) {
                return;
            }
            finish(failure(step, new RuntimeException("timed out after " + timeoutSeconds + "s")).replace(
                    "\"code\":\"Error\"", "\"code\":\"DeadlineExceeded\""), 1);
        }, "watchdog");
        t.setDaemon(true);
        t.start();
    }

    private static void finish(String json, int code) {
        if (!DONE.compareAndSet(false, true)) {
            return;
        }
        System.out.println(json);
        System.out.flush();
        // halt, not exit: gRPC/netty executor threads must not keep the JVM alive or race the output.
        Runtime.getRuntime().halt(code);
    }

    private static String strList(List<String> items) {
        List<String> quoted = new ArrayList<>();
        for (String s : items) {
            quoted.add(str(s));
        }
        return "[" + String.join(",", quoted) + "]";
    }

    private static String str(String s) {
        if (s == null) {
            return "null";
        }
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
            }
        }
        return b.append('"').toString();
    }
}
