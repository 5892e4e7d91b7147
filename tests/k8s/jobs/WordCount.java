/*
 * The job jar of the Kubernetes tests' jar cells (application-jar.yaml and session-job.yaml name
 * this entry class). Counts the words of a few built-in lines in BATCH mode, so the job reaches
 * FINISHED on its own, and prints one "wordcount-result <word>=<count>" line per word to the
 * TaskManager's stdout (the pod log the test reads). Every word goes through
 * artifactgateway.udfs.StringUdfs when that class is on the job's class path — it lives in a
 * separate jar (string-udfs.jar), which application-jar.yaml adds with pipeline.classpaths and
 * which marks each word with "~" — and is only lower-cased otherwise (session-job.yaml runs this
 * jar alone). So the output says whether the UDF jar was loaded on the TaskManagers.
 *
 * Compiled by tests/k8s/build-jobs.sh against Flink 1.18.1.
 */
package org.apache.flink.streaming.examples.wordcount;

import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.Collector;

import java.lang.reflect.Method;
import java.util.Locale;

public final class WordCount {
    private WordCount() {}

    public static void main(String[] args) throws Exception {
        String[] lines =
                args.length > 0
                        ? args
                        : new String[] {
                            "The gateway serves the jar",
                            "the init container fetches the jar",
                            "THE cluster runs the job"
                        };
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setRuntimeMode(RuntimeExecutionMode.BATCH);
        env.fromElements(lines)
                .flatMap(new Tokenizer())
                .keyBy(new WordKey())
                .sum(1)
                .map(new Format())
                .print();
        env.execute("artifact-gateway word count");
    }

    /** Splits a line into words (normalised by the UDF jar when present), emitting (word, 1). */
    public static final class Tokenizer implements FlatMapFunction<String, Tuple2<String, Integer>> {
        private transient Method udf;
        private transient boolean looked;

        @Override
        public void flatMap(String line, Collector<Tuple2<String, Integer>> out) throws Exception {
            if (!looked) {
                looked = true;
                try {
                    udf = Class.forName("artifactgateway.udfs.StringUdfs", true, WordCount.class.getClassLoader())
                            .getMethod("normalize", String.class);
                } catch (ClassNotFoundException e) {
                    udf = null;
                }
            }
            for (String word : line.split("\\W+")) {
                if (!word.isEmpty()) {
                    String w = udf != null ? (String) udf.invoke(null, word) : word.toLowerCase(Locale.ROOT);
                    out.collect(Tuple2.of(w, 1));
                }
            }
        }
    }

    /** Keys a (word, count) pair by its word. */
    public static final class WordKey implements KeySelector<Tuple2<String, Integer>, String> {
        @Override
        public String getKey(Tuple2<String, Integer> value) {
            return value.f0;
        }
    }

    /** The line the test looks for. */
    public static final class Format implements MapFunction<Tuple2<String, Integer>, String> {
        @Override
        public String map(Tuple2<String, Integer> value) {
            return "wordcount-result " + value.f0 + "=" + value.f1;
        }
    }
}
