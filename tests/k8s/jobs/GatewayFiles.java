/*
 * Reads a text file a runner jar was given as its first argument: a local path, or an https://
 * URL of the gateway read with the bearer token and CA of --token-file/--ca-file (the files the
 * session cluster's pods mount). Shared by the SQL and the Flink CDC runner jars (session cells,
 * where the operator's jarURI carries only the runner and the script comes by URL).
 */
package org.apache.flink.examples;

import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

final class GatewayFiles {
    private GatewayFiles() {}

    static String read(String[] args) throws Exception {
        String source = args[0];
        if (!source.startsWith("https://")) {
            return Files.readString(Path.of(source));
        }
        String tokenFile = null;
        String caFile = null;
        for (int i = 1; i + 1 < args.length; i += 2) {
            if (args[i].equals("--token-file")) tokenFile = args[i + 1];
            else if (args[i].equals("--ca-file")) caFile = args[i + 1];
        }
        HttpClient.Builder client = HttpClient.newBuilder();
        if (caFile != null) {
            KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
            trust.load(null, null);
            try (InputStream in = Files.newInputStream(Path.of(caFile))) {
                trust.setCertificateEntry("gateway-ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(trust);
            SSLContext ssl = SSLContext.getInstance("TLS");
            ssl.init(null, tmf.getTrustManagers(), null);
            client.sslContext(ssl);
        }
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(source)).GET();
        if (tokenFile != null) {
            request.header("Authorization", "Bearer " + Files.readString(Path.of(tokenFile)).trim());
        }
        HttpResponse<String> response =
                client.build().send(request.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        if (response.statusCode() != 200) {
            throw new IllegalStateException("GET " + source + " answered " + response.statusCode() + ": " + response.body());
        }
        return response.body();
    }
}
