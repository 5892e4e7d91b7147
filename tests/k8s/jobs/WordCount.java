/*
 * The job jar of the Kubernetes tests' jar cells (application-jar.yaml and session-job.yaml name
 * this entry class). Counts the words of a few built-in lines in BATCH mode, so the job reaches
 * FINISHED on its own, and prints one "wordcount-result <word>=<count>" line per word to the
 * TaskManager's stdout (the pod log the test reads). Every word goes through
 * artifactgateway.udfs.StringUdfs, which lives in a separate jar (string-udfs.jar): the job
 * fails with NoClassDefFoundError on the TaskManagers unless that jar is on the job's class path.
 *
 * Compiled by tests/k8s/build-jobs.sh against Flink 1.18.1.
 */
package org.apache.flink.streaming.examples.wordcount;

import artifactgateway.udfs.StringUdfs;

import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.Collector;

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

    /** Splits a line into words normalised by the UDF jar, emitting (word, 1). */
    public static final class Tokenizer implements FlatMapFunction<String, Tuple2<String, Integer>> {
        @Override
        public void flatMap(String line, Collector<Tuple2<String, Integer>> out) {
            for (String word : line.split("\\W+")) {
                if (!word.isEmpty()) {
                    out.collect(Tuple2.of(StringUdfs.normalize(word), 1));
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
